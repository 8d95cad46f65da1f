"""The lab: studio-mini's training (lab.training) and the procedural world it learns from, with its
evaluator (lab.world). Used by tests, benchmarks and the model's training runs; the app never imports it,
so the wheel and the bundle leave it out (tests/test_architecture.py checks that).

Importing it from a bare checkout (MAGI Studio not installed: a GPU machine given the tree) makes the
folders engine/ and resources/ importable as magi_engine and magi_resources (lab/checkout.py).
"""

from lab.checkout import use_checkout_folders

use_checkout_folders()
