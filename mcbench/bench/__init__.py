"""The benchmark file: YAML (with line numbers for errors) -> validated settings and plugin
choices -> the cells of the matrix, each with the content keys of its stages."""
