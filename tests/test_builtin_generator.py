"""The builtin generator: deterministic procedural art from prompt, seed and aspect ratio."""

import io

import numpy as np
import pytest
from PIL import Image

from goodeye.errors import InvalidRequest
from goodeye.generation.base import ASPECT_RATIOS, GeneratedOutput
from goodeye.generation.builtin import COMPOSITIONS, BuiltinGenerator, plan, render


def pixels(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32)


def difference(a, b):
    """Mean absolute difference per channel, 0..255."""
    return float(np.abs(pixels(a) - pixels(b)).mean())


def test_same_inputs_give_the_same_bytes():
    first = render("snowy mountains at sunset", 1234, "16:9")
    assert render("snowy mountains at sunset", 1234, "16:9") == first
    [output] = BuiltinGenerator().generate("snowy mountains at sunset", 1, "16:9", 1234)
    assert output.data == first


def test_a_new_seed_gives_a_different_image():
    a = render("a lighthouse on a cliff", 1, "1:1")
    b = render("a lighthouse on a cliff", 2, "1:1")
    assert a != b
    assert difference(a, b) > 3


def test_a_different_prompt_gives_a_different_image():
    assert difference(render("sunset over the ocean", 7), render("a neon city at night", 7)) > 10
    # Words the renderer does not know still change the picture.
    assert difference(render("a cat wearing a hat", 7), render("a dog wearing a hat", 7)) > 3


def test_the_aspect_ratio_is_part_of_the_input():
    assert render("a pine forest", 3, "4:3") != render("a pine forest", 3, "3:4")


@pytest.mark.parametrize("aspect_ratio", sorted(ASPECT_RATIOS))
def test_every_aspect_ratio_has_its_size_and_decodes(aspect_ratio):
    data = render("a city skyline at dusk with a river", 5, aspect_ratio)
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        assert image.size == ASPECT_RATIOS[aspect_ratio]
        image.load()
    assert max(ASPECT_RATIOS[aspect_ratio]) == 1024


SCENE_PROMPTS = {
    "mountains": "snowy mountains above a lake at dawn",
    "ocean": "a tropical beach at sunset",
    "forest": "a misty pine forest in autumn",
    "city": "a rainy neon city at night",
    "desert": "desert dunes with a cactus",
    "hills": "a green meadow with flowers",
    "bauhaus": "an abstract geometric poster in red and blue",
    "waves": "calm teal paper waves",
    "orbs": "a dreamy pastel gradient",
}


def test_every_composition_has_a_prompt_here():
    assert set(SCENE_PROMPTS) == set(COMPOSITIONS)


@pytest.mark.parametrize("scene", sorted(SCENE_PROMPTS))
@pytest.mark.parametrize("aspect_ratio", ["1:1", "21:9", "9:16"])
def test_every_composition_renders_a_picture(scene, aspect_ratio):
    prompt = SCENE_PROMPTS[scene]
    assert plan(prompt).scene == scene
    image = pixels(render(prompt, 99, aspect_ratio))
    assert image.shape[:2] == ASPECT_RATIOS[aspect_ratio][::-1]
    # A picture, not a flat fill: light and dark areas and more than a few colours.
    assert image.std() > 12
    assert len(np.unique(image.reshape(-1, 3)[::97], axis=0)) > 50


def test_words_choose_the_composition_light_and_colours():
    p = plan("Snowy MOUNTAINS at sunset under a purple sky, red cabins")
    assert p.scene == "mountains"
    assert p.time == "sunset"
    assert "snow" in p.features
    assert p.sky_tint is not None and p.sky_tint[2] > p.sky_tint[1]  # purple
    assert p.subject_colours and p.subject_colours[0][0] > 150  # red
    assert plan("a city street at night").scene == "city"
    assert plan("a city street at night").time == "night"
    # An unknown prompt still gets a composition, the same one every time.
    assert plan("quarterly report cover").scene == plan("quarterly report cover").scene


@pytest.mark.parametrize("subject", ["forest", "paper waves", "poster"])
def test_colour_words_colour_the_picture(subject):
    def warmth(prompt):
        image = pixels(render(prompt, 21))
        return float(image[..., 0].mean() - image[..., 2].mean())

    assert warmth(f"a red {subject}") - warmth(f"a blue {subject}") > 15


def test_generate_returns_n_outputs_with_consecutive_seeds():
    generator = BuiltinGenerator()
    outputs = generator.generate("paper waves", 3, "3:2", 40)
    assert len(outputs) == 3
    assert all(isinstance(o, GeneratedOutput) and o.url is None for o in outputs)
    assert [o.data for o in outputs] == [render("paper waves", 40 + i, "3:2") for i in range(3)]
    assert len({o.data for o in outputs}) == 3


def test_generate_without_a_seed_draws_one():
    outputs = BuiltinGenerator().generate("a desert", 2, "1:1", None)
    assert len(outputs) == 2
    assert outputs[0].data != outputs[1].data
    for output in outputs:
        with Image.open(io.BytesIO(output.data)) as image:
            assert image.size == (1024, 1024)


@pytest.mark.parametrize("n", [0, 5, -1, 2.0, True])
def test_n_outside_one_to_max_n_is_refused(n):
    with pytest.raises(InvalidRequest):
        BuiltinGenerator().generate("a desert", n, "1:1", 1)


@pytest.mark.parametrize("seed", ["7", 1.5, False])
def test_a_seed_that_is_not_an_integer_is_refused(seed):
    with pytest.raises(InvalidRequest):
        BuiltinGenerator().generate("a desert", 1, "1:1", seed)


def test_an_unknown_aspect_ratio_is_refused():
    with pytest.raises(InvalidRequest) as caught:
        render("a desert", 1, "5:4")
    assert "16:9" in caught.value.message


def test_the_listing_is_honest_about_not_being_an_ai_model():
    listing = BuiltinGenerator().describe()
    assert listing["id"] == "builtin"
    assert listing["is_ai_model"] is False
    assert listing["max_n"] == 4
    assert "not an AI model" in listing["description"]
    assert "deterministic" in listing["description"]
    assert listing["aspect_ratios"] == list(ASPECT_RATIOS)
