"""Keras's class names for the optimizers and losses people name in lower case.

Shared by the snippets (:mod:`assistant.reply`) and the reproduction worker, which both build
these objects by class: a snippet to pass ``from_logits=True``, the worker to set options.
"""
from __future__ import annotations

OPTIMIZER_CLASSES = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop", "nadam": "Nadam",
                     "adagrad": "Adagrad", "adamax": "Adamax", "adadelta": "Adadelta", "ftrl": "Ftrl",
                     "lion": "Lion"}
#: The losses that take ``from_logits``.
LOSS_CLASSES = {"binary_crossentropy": "BinaryCrossentropy", "categorical_crossentropy": "CategoricalCrossentropy",
                "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
                "binary_focal_crossentropy": "BinaryFocalCrossentropy",
                "categorical_focal_crossentropy": "CategoricalFocalCrossentropy"}
