"""Captions of the procedural world: varied wordings of one chunk's content.

"a red circle rolls to the left", "the red ball goes left over green grass", "a big blue box is falling
on a white background"... Training draws from `TRAIN_TEMPLATES`; the evaluator's prompts use
`HELDOUT_TEMPLATES`, sentence shapes the model never saw verbatim. Their motion words are ones training
uses (the held-out "-ing" forms are among `TRAIN_GERUNDS`); their opening "watch" is not, and reaches
the model as an unknown word, as any word a person types that the world never says.
"""

from __future__ import annotations

import numpy as np

from lab.world.scene import CHUNK_FRAMES, ObjectState
from lab.world.storyboard import Storyboard

NOUNS = {
    "circle": ("circle", "ball", "disc", "dot", "sphere"),
    "square": ("square", "box", "block", "cube", "tile"),
    "triangle": ("triangle", "wedge", "pyramid"),
}

VERBS = {
    "left": ("moves to the left", "rolls left", "slides to the left", "goes left", "drifts left",
             "travels leftward", "heads left"),
    "right": ("moves to the right", "rolls right", "slides to the right", "goes right", "drifts right",
              "travels rightward", "heads right"),
    "up": ("moves up", "rises", "floats upward", "goes up", "climbs", "drifts upward"),
    "down": ("moves down", "sinks slowly", "descends", "goes down", "drifts downward", "glides down"),
    "still": ("stays still", "does not move", "rests in place", "sits still", "waits", "remains motionless"),
    "fall": ("falls", "drops to the floor", "falls and bounces", "bounces on the floor", "tumbles down",
             "drops down"),
    "grow": ("grows", "gets bigger", "expands", "swells", "inflates", "grows larger"),
    "shrink": ("shrinks", "gets smaller", "contracts", "dwindles", "shrinks down"),
    "up_left": ("moves up and to the left", "drifts toward the top left", "glides diagonally up and left"),
    "up_right": ("moves up and to the right", "drifts toward the top right", "glides diagonally up and right"),
    "down_left": ("moves down and to the left", "drifts toward the bottom left", "glides diagonally down and left"),
    "down_right": ("moves down and to the right", "drifts toward the bottom right",
                   "glides diagonally down and right"),
}

#: "-ing" forms that training captions use ("a red ball is rolling left").
TRAIN_GERUNDS = {
    "left": ("moving to the left", "rolling left", "sliding to the left", "going left", "drifting left", "heading left"),
    "right": ("moving to the right", "rolling right", "sliding to the right", "going right", "drifting right",
              "heading right"),
    "up": ("moving up", "rising", "floating upward", "going up", "climbing", "drifting upward"),
    "down": ("moving down", "sinking", "descending", "going down", "drifting downward", "gliding down"),
    "still": ("staying still", "not moving", "resting in place", "sitting still", "waiting"),
    "fall": ("falling", "dropping to the floor", "falling and bouncing", "bouncing on the floor", "tumbling down"),
    "grow": ("growing", "getting bigger", "expanding", "swelling", "growing larger"),
    "shrink": ("shrinking", "getting smaller", "contracting", "dwindling", "shrinking down"),
    "up_left": ("moving up and to the left", "drifting up and to the left", "gliding diagonally up and left"),
    "up_right": ("moving up and to the right", "drifting up and to the right", "gliding diagonally up and right"),
    "down_left": ("moving down and to the left", "drifting down and to the left",
                  "gliding diagonally down and left"),
    "down_right": ("moving down and to the right", "drifting down and to the right",
                   "gliding diagonally down and right"),
}

#: The one "-ing" form per motion of the held-out template (each is also a training form).
GERUNDS = {
    "left": "heading left", "right": "heading right", "up": "rising", "down": "sinking", "still": "staying still",
    "fall": "falling", "grow": "growing", "shrink": "shrinking", "up_left": "drifting up and to the left",
    "up_right": "drifting up and to the right", "down_left": "drifting down and to the left",
    "down_right": "drifting down and to the right",
}

PLACES = {
    "white": ("on a white background", "against white", "on white"),
    "dark": ("in a dark room", "on a dark background", "against black"),
    "gray": ("on a gray background", "against gray", "on gray"),
    "sky": ("in the sky", "against the sky", "under a clear sky"),
    "sunset": ("at sunset", "against a sunset sky", "in the evening sky"),
    "grass": ("over the grass", "on the grass", "on a lawn"),
    "sand": ("on sand", "on the beach", "over sandy ground"),
    "water": ("over water", "on the water", "above the lake"),
}

SIZE_WORDS = (("small", "little", "tiny"), ("big", "large"))

TRAIN_TEMPLATES = ("{a} {size}{colour} {noun} {verb}{place}", "the {colour} {noun} {verb}{place}",
                   "{a} {colour} {noun}{place} {verb}", "{a} {size}{colour} {noun} is {gerund}{place}",
                   "{a} {colour} {noun}{place}, {gerund}")
HELDOUT_TEMPLATES = ("{Place}, {a} {colour} {noun} {verb}", "watch the {colour} {noun} {gerund}{place}")


def _pick(rng: np.random.Generator, options):
    return options[rng.integers(len(options))]


def _size_word(rng: np.random.Generator, state: ObjectState) -> str:
    if state.size < 13.5 and rng.random() < 0.5:
        return _pick(rng, SIZE_WORDS[0]) + " "
    if state.size > 19.5 and rng.random() < 0.5:
        return _pick(rng, SIZE_WORDS[1]) + " "
    return ""


def object_phrase(rng, template: str, state: ObjectState, motion: str, place: str) -> str:
    size = _size_word(rng, state) if "{size}" in template else ""
    article = "an" if (size or state.colour)[0] in "aeiou" else "a"
    noun, verb = _pick(rng, NOUNS[state.shape]), _pick(rng, VERBS[motion])
    # Drawn last and only for training templates, so held-out prompts stay what they always were.
    if "{gerund}" not in template:
        gerund = ""
    elif template in HELDOUT_TEMPLATES:
        gerund = GERUNDS[motion]
    else:
        gerund = _pick(rng, TRAIN_GERUNDS[motion])
    text = template.format(a=article, size=size, colour=state.colour, noun=noun, verb=verb, gerund=gerund,
                           place=f" {place}" if place else "",
                           Place=place[:1].upper() + place[1:] if place else "Here")
    return " ".join(text.split())


def caption(board: Storyboard, chunk: int, rng: np.random.Generator, *, heldout: bool = False,
            place_probability: float = 0.7, tracks: list | None = None) -> str:
    """One sentence for chunk `chunk` of `board` (both objects when there are two).

    `tracks` (board.tracks()) can be passed in to avoid re-simulating the board for every caption.
    """
    templates = HELDOUT_TEMPLATES if heldout else TRAIN_TEMPLATES
    if chunk == 0:
        states = board.objects
    else:
        states = tuple(t[chunk * CHUNK_FRAMES - 1] for t in (tracks if tracks is not None else board.tracks()))
    place = _pick(rng, PLACES[board.background]) if heldout or rng.random() < place_probability else ""
    parts = []
    for o, state in enumerate(states):
        template = _pick(rng, templates)
        if o > 0:  # the place is said once; the second object joins the sentence as a plain clause
            template = "{a} {colour} {noun} {verb}" if heldout else template
        parts.append(object_phrase(rng, template, state, board.motions[chunk][o], place if o == 0 else ""))
    joiner = _pick(rng, (" while ", " and ", " as ")) if len(parts) > 1 else ""
    return joiner.join(parts)


def storyboard_captions(board: Storyboard, seed: int, *, heldout: bool = False, tracks: list | None = None) -> list[str]:
    rng = np.random.default_rng(seed)
    tracks = tracks if tracks is not None else board.tracks()
    return [caption(board, c, rng, heldout=heldout, tracks=tracks) for c in range(board.num_chunks)]


def vocabulary_sentences() -> list[str]:
    """Phrases covering every word a training caption may use (to build the text encoder's vocabulary).

    Only training words: a word the model never trains on would keep its random embedding, so it is
    better read as unknown (training teaches the model to pass over unknown words).
    """
    words = []
    for family in (NOUNS, VERBS, TRAIN_GERUNDS, PLACES):
        for value in family.values():
            words += list(value)
    words += [w for group in SIZE_WORDS for w in group]
    words += ["a", "an", "the", "is", "while", "and", "as", "red", "green", "blue", "yellow", "purple", "orange"]
    return words
