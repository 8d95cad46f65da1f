"""The lab: studio-mini's training (lab.training) and the procedural world it learns from, with its
evaluator (lab.world). Used by tests, benchmarks and the model's training runs; the app never imports it,
so the wheel and the bundle leave it out (tests/test_architecture.py checks that)."""
