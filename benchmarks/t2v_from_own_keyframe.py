"""Does text-to-video move better as keyframe-then-animate? The first chunk from text, then its first
frame as the image of an image-to-video run of the whole storyboard.

    python benchmarks/t2v_from_own_keyframe.py --storyboards 16 --out /tmp/keyframe

With a real first frame studio-mini moves the first chunk right far more often than from text alone
(EVAL.md: 72.5% against 40.5%); this asks whether its own first frame does as well. Same held-out
storyboards and seeds as `python -m lab.world.evaluate` (the first N of them), so the figures
compare with its results.json chunk for chunk. Writes <out>/results.json (the evaluator's summary).
"""

from __future__ import annotations

import json

import cv2

from magi_engine.video_io import read_video
from lab.world import evaluate as E
from lab.world import metrics as M


def main(argv: list[str] | None = None) -> None:
    args = E.diagnostic_parser(__doc__.split("\n\n")[0], storyboards=16).parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    scores, records = [], []
    for k in range(args.storyboards):
        seed = E.HELDOUT_SEED + args.seed + k
        board, prompts = E.heldout(seed, args.chunks)
        video, keyframe = args.out / f"t2v_{seed}.mp4", args.out / f"key_{seed}.png"
        if not E.complete_video(video, args.chunks):
            E.generate_video(args, prompts[:1], seed, args.out / f"key_{seed}.mp4")
            first = read_video(args.out / f"key_{seed}.mp4")[0]
            cv2.imwrite(str(keyframe), cv2.cvtColor(first, cv2.COLOR_RGB2BGR))
            E.generate_video(args, prompts, seed, video, keyframe)
        scored = E.score_board(board, read_video(video))
        scores += scored.chunks
        records.append(E.board_record(seed, board, prompts, scored))
        print(k, seed, [c.motion_ok for c in scored.chunks], flush=True)
    summary = M.chunk_summary(scores)
    summary["motion_by_chunk"] = {c: M.fraction(s.motion_ok for s in scores if s.scored and s.chunk == c)
                                  for c in range(args.chunks)}
    (args.out / "results.json").write_text(json.dumps({"t2v": summary, "storyboards": records}, indent=1) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
