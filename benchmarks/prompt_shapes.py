"""Does the sentence shape of a prompt change what studio-mini makes? The evaluator's one-object
storyboards again, each "{Place}, a red ball rolls left" prompt said in a training shape with the
same words ("a red ball rolls left {place}"); the "watch the red ball rising ..." prompts unchanged.

    python benchmarks/prompt_shapes.py --storyboards 32 --out /tmp/shapes

Same held-out storyboards and seeds as `python -m lab.world.evaluate` (the first N, two-object ones
skipped), so each chunk compares with the evaluator's results.json. Writes <out>/results.json: the
scores by prompt shape, as held out and as reworded.
"""

from __future__ import annotations

import json

from magi_engine.video_io import read_video
from lab.world import evaluate as E
from lab.world import metrics as M


def training_shape(prompt: str) -> str:
    """ "On sand, an orange circle falls" → "an orange circle falls on sand"; other prompts unchanged."""
    if prompt.startswith("watch ") or ", " not in prompt:
        return prompt
    place, rest = prompt.split(", ", 1)
    return f"{rest} {place[:1].lower()}{place[1:]}"


def main(argv: list[str] | None = None) -> None:
    args = E.diagnostic_parser(__doc__.split("\n\n")[0], storyboards=32).parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    by_shape: dict[str, dict[str, list]] = {"place first": {"held out": [], "reworded": []},
                                            "watch": {"held out": [], "reworded": []}}
    records = []
    for k in range(args.storyboards):
        seed = E.HELDOUT_SEED + args.seed + k
        board, prompts = E.heldout(seed, args.chunks)
        if len(board.objects) != 1:
            continue
        reworded = [training_shape(p) for p in prompts]
        scores = {}
        for name, said in (("held out", prompts), ("reworded", reworded)):
            video = args.out / f"{name.replace(' ', '_')}_{seed}.mp4"
            if not E.complete_video(video, args.chunks):
                E.generate_video(args, said, seed, video)
            scores[name] = E.score_board(board, read_video(video)).chunks
        for c, prompt in enumerate(prompts):
            shape = "watch" if prompt.startswith("watch ") else "place first"
            for name in scores:
                by_shape[shape][name].append(scores[name][c])
        records.append({"seed": seed, "prompts": prompts, "reworded": reworded,
                        **{name: [s.motion_ok for s in chunks] for name, chunks in scores.items()}})
        print(k, seed, records[-1]["held out"], records[-1]["reworded"], flush=True)
    summary = {shape: {name: M.chunk_summary(chunks) for name, chunks in pair.items()}
               for shape, pair in by_shape.items()}
    (args.out / "results.json").write_text(json.dumps({"by_shape": summary, "storyboards": records}, indent=1) + "\n")
    for shape, pair in summary.items():
        for name, figures in pair.items():
            print(f"{shape:12s} {name:9s} chunks {figures['chunks']:3d}  colour and shape {figures['colour_shape']:.3f}  "
                  f"motion {figures['motion']:.3f}")


if __name__ == "__main__":
    main()
