"""Several devices for one video, on torch.distributed (NCCL on GPUs, gloo on CPUs).

Two ways to split the work, which combine (world = guidance groups x sequence ranks):

* guidance-parallel (`guidance.py`): the passes of one denoising step (a base model's three guidance
  passes, a distilled model's near-clean copy) run on different groups of ranks at once; every rank
  then holds every pass's velocity and combines them exactly as one device does;
* sequence-parallel (`sequence.py`): the tokens of each chunk of a forward are split across the ranks
  of a group; attention switches to a split over heads with an all-to-all (Ulysses-style), so MAGI-1's
  block-causal spans run unchanged, and the KV cache holds each rank's heads only.

`plan.py` says how a world is split (no torch); `runtime.py` sets up the process groups and counts the
bytes every collective moves; `launch.py` starts the ranks (rank 0 is the calling process and owns
all I/O and the event stream; the others follow its jobs step by step) and turns a failure on any
rank into one typed error on rank 0.
"""
