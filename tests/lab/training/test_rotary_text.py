"""Carrying a learned-position text encoder over to rotary positions (lab/training/rotary_text.py)."""

from __future__ import annotations

import torch

from magi_engine.text import WordTextEncoder, WordTextEncoderConfig, build_vocabulary
from lab.training.rotary_text import distill, rotary_student, training_captions
from lab.world.captions import vocabulary_sentences


def teacher() -> WordTextEncoder:
    torch.manual_seed(0)
    config = WordTextEncoderConfig(build_vocabulary(vocabulary_sentences()), embed_dim=16, num_layers=1,
                                   num_heads=2, max_tokens=24, ffn_ratio=2.0)
    model = WordTextEncoder(config)
    with torch.no_grad():  # positions that matter, as a trained table's do
        model.position_embedding.normal_(std=0.5)
    return model.eval()


def test_the_student_keeps_every_weight_but_the_position_table():
    old = teacher()
    student = rotary_student(old)
    assert student.config.positions == "rotary" and student.config.vocab == old.config.vocab
    assert torch.equal(student.token_embedding.weight, old.token_embedding.weight)
    assert torch.equal(student.layers[0].linear1.weight, old.layers[0].linear1.weight)


def test_training_captions_are_the_trainers_wordings():
    captions = training_captions(5, 2, chunks=3)
    assert len(captions) == 2 * 6 * 3 and all(isinstance(c, str) and c for c in captions)
    assert training_captions(5, 2, chunks=3) == captions  # seeded


def test_distillation_brings_the_students_features_to_the_teachers():
    old = teacher()
    student, summary = distill(old, training_captions(0, 20, chunks=4), minutes=5, batch=32, lr=3e-3,
                               unknown_words=0.2, seed=0, max_steps=60)
    assert summary["steps"] == 60
    assert summary["feature_error_end"] < 0.5 * summary["feature_error_start"]
    assert student.config.positions == "rotary" and not student.training
