"""`ema_decay`: a run keeps a moving average of its trained weights, publishes it, and
carries it with its state."""

from __future__ import annotations

import pytest
from tiny_training import PIXEL_STUDENT, train_tiny

from amodal_ros.cli.main import main

torch = pytest.importorskip("torch")

UNET = "unet/diffusion_pytorch_model.safetensors"


def test_the_average_warms_up_then_follows_the_weights_at_its_decay():
    from amodal_ros.train.ema import WeightAverage

    weight = torch.nn.Parameter(torch.zeros(3))
    average = WeightAverage({"w": weight}, decay=0.9)
    assert average.decay_at(1) == pytest.approx(2 / 11)  # early steps move it most
    assert average.decay_at(1000) == 0.9
    with torch.no_grad():
        weight.fill_(1.0)
    average.update(1)
    assert torch.allclose(average.average["w"], torch.full((3,), 9 / 11))
    average.update(1000)
    expected = 9 / 11 + 0.1 * (1 - 9 / 11)
    assert torch.allclose(average.average["w"], torch.full((3,), expected))
    with average.swapped_in():
        assert torch.allclose(weight.detach(), torch.full((3,), expected))
    assert torch.equal(weight.detach(), torch.ones(3))  # the trained weights come back
    with pytest.raises(ValueError, match="does not match"):
        average.load_state_dict({"v": torch.zeros(3)})
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        WeightAverage({"w": weight}, decay=1.0)


AVERAGED = dict(lr=1e-2, ema_decay=0.5)  # steps large enough to move the average


def test_checkpoints_publish_the_average_and_a_carried_state_continues_it(tmp_path):
    """The published UNet is the average (not the last step's weights, which the state keeps
    to train on); a run stopped after step 1 of 3 and carried elsewhere ends with the same
    average as the run that never stopped, so the average travels with the state."""
    from safetensors.torch import load_file

    from amodal_ros.train.carry import unpack
    from amodal_ros.train.carry_state import pack_state
    from amodal_ros.train.loop import TrainConfig, _starting_components

    straight = train_tiny(tmp_path, "straight", 3, **AVERAGED)
    state = straight / "state"
    published = load_file(straight / "final" / UNET)
    average, trained = load_file(state / "ema.safetensors"), load_file(state / "model.safetensors")
    stored = {
        k.replace("conv_in2", "conv_in"): v for k, v in published.items() if "conv_in." not in k
    }
    assert set(average) <= set(stored)  # the reference stores a 12-channel input as conv_in2
    assert all(torch.equal(stored[k], v) for k, v in average.items())
    assert any(not torch.equal(trained[k], v) for k, v in average.items())

    stopped = train_tiny(tmp_path, "stopped", 1, **AVERAGED)
    # after step 1 the average is the start moved 9/11 of the way (decay 2/11) to the weights
    start = _starting_components(TrainConfig(num_frames=4, height=32, width=64)).unet
    after_one = load_file(stopped / "state" / "model.safetensors")
    moved = load_file(stopped / "state" / "ema.safetensors")
    for name, before in start.state_dict().items():
        if name in moved:
            expected = before + 9 / 11 * (after_one[name] - before)
            assert torch.allclose(moved[name], expected, atol=1e-6), name
    pack_state(stopped, tmp_path / "packed", shard_mib=0.5)
    carried = tmp_path / "carried"
    unpack(tmp_path / "packed", carried)
    config = str(carried / "train_config.json")
    assert main(["train", config, "--out", str(carried), "--steps", "3"]) == 0
    ended = load_file(carried / "final" / UNET)
    assert all(torch.equal(ended[k], v) for k, v in published.items())


@pytest.mark.parametrize("extra", [dict(stage="vae"), PIXEL_STUDENT], ids=["vae", "pixels"])
def test_an_autoencoder_trained_in_the_run_publishes_its_average_too(tmp_path, extra):
    """Stage vae averages the autoencoder it trains; a pixel-space student averages the VAE
    decoder it trains beside its UNet; either publishes the averaged decoder."""
    from safetensors.torch import load_file

    run = train_tiny(tmp_path, "run", 2, **AVERAGED, **extra)
    average = load_file(run / "state" / "ema.safetensors")
    published = load_file(run / "final" / "vae" / "diffusion_pytorch_model.safetensors")
    decoder = [k for k in average if k.startswith("decoder.")]
    assert decoder
    assert all(torch.equal(published[k], average[k]) for k in decoder)
    trained = load_file(run / "state" / "model.safetensors")
    if extra["stage"] == "vae":  # the state's model is the autoencoder, as it was trained
        assert any(not torch.equal(trained[k], average[k]) for k in decoder)
