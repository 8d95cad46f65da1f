"""Training studio-mini: batch structure matches the sampler, checkpoints resume, a tiny run learns."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from magi_engine.config import CHUNK_LATENT_FRAMES
from lab.training import studio_mini
from lab.training.checkpoint import load_training_state, save_training_state
from lab.training.dit_batches import BatchStructure, make_batch, sample_structure
from lab.training.transfer import pack, receive, unpack

SPANS = studio_mini.SAMPLING.attention_spans


def fake_data(count: int = 3, chunks: int = 8) -> dict:
    g = torch.Generator().manual_seed(0)
    return {"latents": torch.randn(count, 16, chunks * 6, 4, 4, generator=g).bfloat16(),
            "images": torch.randn(count, 16, 1, 4, 4, generator=g).bfloat16(),
            "captions": [[[f"caption {i} {c} {v}" for c in range(chunks)] for v in range(2)] for i in range(count)]}


def test_structures_cover_the_sampler_windows_and_never_look_ahead():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(500):
        s = sample_structure(rng, 8)
        layout = s.layout(96, SPANS)
        seen.add((s.window, s.noisy, s.prefix > 0, s.image_to_video))
        assert s.chunks <= 8 and s.start + s.chunks <= 8
        for k in range(s.prefix):
            assert layout.key_starts[k] == k  # clean chunks see only themselves (as in the KV cache)
        for j, quarter in enumerate(s.quarters()):
            own = s.prefix + j
            assert layout.key_starts[own] == max(0, own - SPANS[quarter] + 1)
        assert sorted(s.quarters(), reverse=True) == s.quarters()  # older chunks are in later quarters
    assert {(4, 4, True, False), (1, 1, True, False), (4, 4, False, True), (2, 2, True, False)} <= seen


def test_batch_noise_levels_rise_with_age_and_held_frames_are_the_image():
    rng = np.random.default_rng(1)
    data = fake_data()
    s = BatchStructure(window=4, noisy=4, prefix=0, youngest_age=0, quarter_offset=0, start=0, image_to_video=True)
    batch = make_batch(rng, data, 5, s, studio_mini.SAMPLING, torch.device("cpu"), caption_dropout=0.0)
    assert batch.latents.shape == (5, 16, 24, 4, 4) and batch.target.shape == (5, 16, 24, 4, 4)
    assert torch.all(batch.t[:, :-1] > batch.t[:, 1:])  # oldest chunk cleanest
    assert batch.loss_mask[0, 0, 0] == 0 and batch.loss_mask.sum() == 23
    assert all(p is not None for row in batch.prompts for p in row)
    held = batch.latents[:, :, :1]
    assert any(torch.equal(held[b], data["images"][i].float()) for b in range(5) for i in range(3))


def test_prefix_chunks_are_clean_and_captions_can_drop():
    rng = np.random.default_rng(2)
    s = BatchStructure(window=1, noisy=1, prefix=3, youngest_age=0, quarter_offset=2, start=1, image_to_video=False)
    batch = make_batch(rng, fake_data(), 64, s, studio_mini.SAMPLING, torch.device("cpu"), caption_dropout=0.5)
    assert torch.all(batch.t[:, :3] == studio_mini.SAMPLING.clean_t) and not batch.caption_present[:, :3].any()
    dropped = [row[0] is None for row in batch.prompts]
    assert 10 < sum(dropped) < 54
    assert all(batch.caption_present[b, 3] != dropped[b] for b in range(64))


def test_unknown_words_go_into_about_their_share_of_captions_one_each_anywhere():
    s = BatchStructure(window=4, noisy=4, prefix=0, youngest_age=0, quarter_offset=0, start=0, image_to_video=False)
    data, device = fake_data(), torch.device("cpu")
    plain = make_batch(np.random.default_rng(3), data, 64, s, studio_mini.SAMPLING, device, caption_dropout=0.0)
    assert not any("<unk>" in p for row in plain.prompts for p in row)
    batch = make_batch(np.random.default_rng(3), data, 64, s, studio_mini.SAMPLING, device, caption_dropout=0.0,
                       unknown_words=0.3)
    prompts = [p for row in batch.prompts for p in row]
    marked = [p for p in prompts if "<unk>" in p]
    assert 0.2 < len(marked) / len(prompts) < 0.4
    for p in marked:
        words = p.split()
        assert words.count("<unk>") == 1
        assert " ".join(w for w in words if w != "<unk>").startswith("caption ")  # the caption's words, in order
    assert {p.split().index("<unk>") for p in marked} == {0, 1, 2, 3, 4}  # before, inside and after
    several = make_batch(np.random.default_rng(3), data, 64, s, studio_mini.SAMPLING, device, caption_dropout=0.0,
                         unknown_words=1.0, max_unknown=3)
    counts = [p.split().count("<unk>") for row in several.prompts for p in row]
    assert set(counts) == {1, 2, 3}


def test_object_cells_hold_the_path_each_chunk_sweeps():
    from lab.training.data import object_cells
    from lab.world.scene import BACKGROUNDS, ObjectState
    from lab.world.storyboard import Storyboard

    board = Storyboard("grass", (ObjectState("circle", "red", 30.0, 60.0, 10.0),), (("right",), ("right",)))
    cells = object_cells(board.render(), BACKGROUNDS["grass"].render())
    assert cells.shape == (2, 16, 16)
    track = board.tracks()[0]
    for chunk in range(2):
        first, last = track[chunk * 24], track[chunk * 24 + 23]
        marked = np.argwhere(cells[chunk])
        assert marked[:, 0].min() == int(first.y - first.size) // 8 and marked[:, 0].max() == int(first.y + first.size) // 8
        assert marked[:, 1].min() == int(first.x - first.size) // 8 and marked[:, 1].max() == int(last.x + last.size) // 8
    assert cells[1, :, 8:].sum() > cells[0, :, 8:].sum()  # the second chunk's path lies further right


def test_object_weight_weighs_the_object_cells_of_the_noisy_chunks_only():
    rng = np.random.default_rng(3)
    data = fake_data()
    cells = torch.zeros(3, 8, 4, 4, dtype=torch.uint8)
    for chunk in range(8):
        cells[:, chunk, chunk % 4, 1] = 1  # a different cell marked in every chunk
    data["object_cells"] = cells
    s = BatchStructure(window=2, noisy=2, prefix=1, youngest_age=0, quarter_offset=0, start=2, image_to_video=False)
    plain = make_batch(np.random.default_rng(3), data, 4, s, studio_mini.SAMPLING, torch.device("cpu"))
    weighted = make_batch(rng, data, 4, s, studio_mini.SAMPLING, torch.device("cpu"), object_weight=3.0)
    assert torch.equal(plain.latents, weighted.latents) and plain.loss_mask.shape == (1, 1, 12, 1, 1)
    assert weighted.loss_mask.shape == (4, 1, 12, 4, 4)
    for j, chunk in enumerate((3, 4)):  # the noisy chunks follow the one clean prefix chunk at 2
        frames = weighted.loss_mask[:, 0, j * CHUNK_LATENT_FRAMES:(j + 1) * CHUNK_LATENT_FRAMES]
        assert torch.all(frames[:, :, chunk % 4, 1] == 4.0)
        assert frames.sum() == 4 * CHUNK_LATENT_FRAMES * (15 + 4.0)


def test_context_noise_touches_the_clean_prefix_only():
    data = fake_data()
    s = BatchStructure(window=1, noisy=1, prefix=2, youngest_age=0, quarter_offset=0, start=1, image_to_video=False)
    plain = make_batch(np.random.default_rng(4), data, 16, s, studio_mini.SAMPLING, torch.device("cpu"))
    noisy = make_batch(np.random.default_rng(4), data, 16, s, studio_mini.SAMPLING, torch.device("cpu"),
                       context_noise=0.3)
    prefix = 2 * CHUNK_LATENT_FRAMES
    assert torch.equal(plain.latents[:, :, prefix:], noisy.latents[:, :, prefix:])
    assert torch.equal(plain.t, noisy.t) and torch.equal(plain.target, noisy.target)  # still labelled clean
    spread = (noisy.latents[:, :, :prefix] - plain.latents[:, :, :prefix]).flatten(1).std(dim=1)
    assert 0 < spread.min() and spread.max() < 0.3 and spread.max() - spread.min() > 0.1  # drawn per sample


def test_training_state_round_trip_with_optimizer(tmp_path):
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    save_training_state(tmp_path / "s.safetensors", modules={"m": model}, optimizers={"o": optimizer},
                        info={"step": 7})
    other = torch.nn.Linear(4, 3)
    other_opt = torch.optim.AdamW(other.parameters(), lr=1e-2)
    info = load_training_state(tmp_path / "s.safetensors", modules={"m": other}, optimizers={"o": other_opt})
    assert info == {"step": 7} and torch.equal(other.weight, model.weight)
    assert torch.equal(other_opt.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])


@pytest.mark.slow
def test_a_tiny_run_trains_resumes_through_transfer_and_exports(tmp_path, monkeypatch):
    from lab.training import train_dit, train_vae

    run = tmp_path / "run"
    train_vae.main(["--out", str(run), "--steps", "3", "--batch", "2", "--workers", "0", "--config", "tiny"])
    args = ["--out", str(run), "--batch", "2", "--storyboards", "3", "--workers", "0", "--tiny",
            "--probe-every", "1000", "--object-weight", "2"]
    from safetensors.torch import load_file, save_file

    save_file({"latents": torch.zeros(1, 16, 48, 16, 16), "images": torch.zeros(1, 16, 1, 16, 16)},
              str(run / "data.safetensors"))  # stored before object cells: rendered again
    (run / "data_captions.json").write_text('{"captions": [], "seeds": [0]}')
    train_dit.main(args + ["--steps", "3"])
    assert (run / "probe_000003.png").is_file()
    stored = load_file(str(run / "data.safetensors"))
    assert stored["latents"].shape[0] == 3 and stored["object_cells"].shape == (3, 8, 16, 16)
    assert 0 < stored["object_cells"].float().mean() < 0.5
    pack(run, tmp_path / "moved")
    assert all(p.stat().st_size < 16 * 2**20 for p in (tmp_path / "moved").iterdir())
    unpack(tmp_path / "moved", tmp_path / "again")
    train_dit.main(["--out", str(tmp_path / "again")] + args[2:] + ["--steps", "5"])
    assert load_training_state(tmp_path / "again" / "dit_state.safetensors", modules={})["step"] == 5
    # After a call: its weights are exported and its raw parts replace the carry, stale files and all.
    from lab.training import export

    exported = []
    monkeypatch.setattr(export, "main", lambda run_dir, bundle: exported.append(
        (load_training_state(run_dir / "dit_state.safetensors", modules={})["step"], bundle)))
    carry = tmp_path / "run_in"
    carry.mkdir()
    (carry / "dit_ema.safetensors").write_bytes(b"stale")
    receive(tmp_path / "moved", tmp_path / "bundle", carry)
    assert exported == [(3, tmp_path / "bundle")]
    assert sorted(p.name for p in carry.iterdir()) == ["dit.safetensors", "run.json", "text.safetensors"]
    # A wall-clock cap already spent stops the run after one step, and the step is saved.
    train_dit.main(["--out", str(tmp_path / "again")] + args[2:] + ["--steps", "50", "--wall-minutes", "0"])
    assert load_training_state(tmp_path / "again" / "dit_state.safetensors", modules={})["step"] == 6


def test_saved_step_reads_the_header_of_a_training_checkpoint(tmp_path):
    from lab.training.checkpoint import save_training_state, saved_step

    module = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(module.parameters())
    save_training_state(tmp_path / "state.safetensors", modules={"m": module}, optimizers={"adam": optimizer},
                        info={"step": 1234})
    assert saved_step(tmp_path / "state.safetensors") == 1234


def test_a_carry_seeded_from_the_shipped_bundle_resumes_its_weights(tmp_path):
    """transfer.seed: the bundle's DiT as raw and EMA DiT, the given encoder as raw and EMA encoder."""
    from magi_engine.bundle import load_native_bundle
    from magi_engine.dit.model import MagiDiT
    from magi_engine.models import studio_mini_path
    from magi_engine.text.tiny import WordTextEncoder
    from lab.training.rotary_text import rotary_student
    from lab.training.transfer import complete, seed

    shipped = load_native_bundle(studio_mini_path(), torch.device("cpu"), torch.float32)
    encoder = rotary_student(shipped.text_encoder) if shipped.text_encoder.config.positions == "learned" \
        else shipped.text_encoder
    encoder.save(tmp_path / "encoder.safetensors")
    carry = tmp_path / "run_in"
    seed(studio_mini_path(), carry, 1234, tmp_path / "encoder.safetensors")
    complete(carry, studio_mini_path())
    unpack(carry, tmp_path / "run")
    dit, ema_dit = MagiDiT(studio_mini.DIT), MagiDiT(studio_mini.DIT)
    text, ema_text = WordTextEncoder(encoder.config), WordTextEncoder(encoder.config)
    info = load_training_state(tmp_path / "run" / "dit_state.safetensors",
                               modules={"dit": dit, "ema_dit": ema_dit, "text": text, "ema_text": ema_text})
    assert info["step"] == 1234 and info["resumed_without_optimizer"]
    weight = "layers.3.attn.to_q.weight"
    shipped_weight = dict(shipped.dit.named_parameters())[weight]
    assert torch.equal(dict(dit.named_parameters())[weight], shipped_weight)
    assert torch.equal(dict(ema_dit.named_parameters())[weight], shipped_weight)
    prompt = "a red ball rolls left on the grass"
    expected = encoder.encode(prompt)
    assert torch.allclose(text.eval().encode(prompt), expected, atol=1e-2)  # stored in fp16
    assert torch.equal(text.encode(prompt), ema_text.eval().encode(prompt))
    vae = json.loads((tmp_path / "run" / "vae.json").read_text())
    assert vae["scale_factor"] == shipped.vae.config.scale_factor
    from safetensors.torch import load_file

    carried_vae, shipped_vae = load_file(str(tmp_path / "run" / "vae.safetensors")), shipped.vae.state_dict()
    assert carried_vae.keys() == shipped_vae.keys()  # the VAE parts carry the bundle's VAE, in int8
    assert all((carried_vae[k] - shipped_vae[k]).norm() <= 0.02 * shipped_vae[k].norm() for k in shipped_vae)


@pytest.mark.slow
def test_decoder_only_training_leaves_the_encoder_and_the_latent_scale(tmp_path):
    from safetensors.torch import load_file

    from lab.training import train_vae

    first, second = tmp_path / "first", tmp_path / "second"
    common = ["--batch", "2", "--workers", "0", "--config", "tiny"]
    train_vae.main(["--out", str(first), "--steps", "2", *common])
    train_vae.main(["--out", str(second), "--steps", "2", "--init", str(first), "--decoder-only", *common])
    before, after = load_file(str(first / "vae.safetensors")), load_file(str(second / "vae.safetensors"))
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("encoder."))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))
    assert json.loads((second / "vae.json").read_text()) == json.loads((first / "vae.json").read_text())
    with pytest.raises(SystemExit):
        train_vae.main(["--out", str(tmp_path / "third"), "--decoder-only", *common])

    deeper = tmp_path / "deeper"
    train_vae.main(["--out", str(deeper), "--steps", "2", "--init", str(second), "--decoder-only",
                    "--decoder-depth", "3", *common])
    config = json.loads((deeper / "vae.json").read_text())
    assert config["decoder_depth"] == 3 and config["scale_factor"] == json.loads((first / "vae.json").read_text())["scale_factor"]
    grown = load_file(str(deeper / "vae.safetensors"))
    assert "decoder.blocks.2.mlp.fc2.weight" in grown and "encoder.blocks.1.mlp.fc2.weight" not in grown
    assert all(torch.equal(before[k], grown[k]) for k in before if k.startswith("encoder."))
    with pytest.raises(SystemExit):
        train_vae.main(["--out", str(tmp_path / "fourth"), "--decoder-depth", "3", *common])

    # The deeper decoder goes into a model whose VAE is `first`; the model's files take it and load it.
    import dataclasses

    from magi_engine.bundle import load_native_bundle
    from magi_engine.errors import CheckpointError
    from lab.training import export
    from lab.training.train_vae import load_trained_vae
    from tests.engine.factories import tiny_bundle

    model = dataclasses.replace(tiny_bundle(), vae=load_trained_vae(first, torch.device("cpu")))
    export.write(model, tmp_path / "model")
    shipped = load_native_bundle(tmp_path / "model", torch.device("cpu"), torch.float32)
    export.write(export.with_decoder(shipped, deeper), tmp_path / "model")
    reloaded = load_native_bundle(tmp_path / "model", torch.device("cpu"), torch.float32)
    assert len(reloaded.vae.decoder.blocks) == 3 and reloaded.vae.config.decoder_depth == 3
    latents = torch.randn(16, 2, 4, 4)
    expected = load_trained_vae(deeper, torch.device("cpu")).latents_to_pixels(latents).float()
    assert (reloaded.vae.latents_to_pixels(latents).float() - expected).abs().mean() < 1.0  # int8 rounding only
    other = tmp_path / "other"
    train_vae.main(["--out", str(other), "--steps", "1", "--seed", "5", *common])
    with pytest.raises(CheckpointError, match="another encoder"):
        export.with_decoder(reloaded, other)


def test_motion_inside_latent_frames_marks_the_moving_edges_only():
    from lab.training.train_vae import motion_inside_latent_frames

    clip = -torch.ones(1, 3, 8, 16, 16)
    for f in range(8):  # a white bar one pixel further right every frame
        clip[:, :, f, 4:12, 2 + f:6 + f] = 1.0
    moving = motion_inside_latent_frames(clip, 4)[0, 0]  # [T, H, W]
    assert moving.shape == (8, 16, 16)
    assert not moving[:, :4].any() and not moving[:, 12:].any()  # rows the bar never covers
    assert moving[0, 4, 2] and moving[3, 4, 8]  # the edges the bar leaves and reaches
    assert not moving[:4, :, 5].any()  # column 5 is under the bar in all of frames 0-3: it does not change
    assert not motion_inside_latent_frames(clip[:, :, :1].expand(-1, -1, 4, -1, -1), 4).any()  # a still image


def test_the_motion_weight_adds_to_the_loss_only_where_a_clip_moves_inside_a_latent_frame():
    import dataclasses

    from lab.training import studio_mini
    from lab.training.train_vae import vae_loss
    from magi_engine.vae import VideoVAE

    vae = VideoVAE(dataclasses.replace(studio_mini.VAE, video_size=32, embed_dim=256, num_heads=4)).eval()
    still = torch.rand(1, 3, 1, 32, 32).expand(-1, -1, 4, -1, -1) * 2 - 1
    moving = torch.rand(1, 3, 4, 32, 32) * 2 - 1

    def loss(pixels, weight):
        torch.manual_seed(0)  # the same posterior sample for both weights
        return vae_loss(vae, pixels, kl_weight=0.0, motion_weight=weight)

    with torch.no_grad():
        assert torch.equal(loss(still, 8.0)[0], loss(still, 0.0)[0])
        plain, weighted = loss(moving, 0.0), loss(moving, 8.0)
    assert torch.equal(plain[1], weighted[1])  # the reported MSE stays the plain one
    assert weighted[0] > plain[0] * 2
