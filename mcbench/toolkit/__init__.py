"""Torch helpers a plugin may use: the training loop (``training``), resumable training
state (``checkpoint``), curve models (``curves``), forward passes and BatchNorm
recalibration (``evaluation``), evasion-attack helpers and the adversarial-training loss
(``adversarial``), tampering helpers (``tampering``), the network wrapper and layer lookup
(``nets``), the input Hessian (``hessian``) and augmentation (``augment``). No module here
reads files, configuration or the results store."""
