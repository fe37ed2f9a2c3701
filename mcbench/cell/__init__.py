"""A cell's science, torch and plugins in hand but no store: how the test set is divided,
the models a cell builds, how they are scored, its stages (one file each, declared once in
``mcbench.cell.stages``) and the point it reports. ``mcbench.run`` schedules and stores."""
