"""From a prompt to a Plan: which composition, time of day, palette and features its words ask for."""

from dataclasses import dataclass, field
import hashlib
import re


COLOUR_WORDS = {
    "red": (204, 42, 48), "crimson": (168, 22, 52), "scarlet": (222, 40, 32), "maroon": (112, 22, 38),
    "ruby": (170, 18, 62), "cherry": (196, 28, 60), "orange": (242, 132, 40), "amber": (246, 172, 42),
    "peach": (250, 186, 150), "coral": (246, 112, 96), "tangerine": (246, 140, 30), "yellow": (246, 212, 62),
    "gold": (222, 172, 52), "golden": (228, 176, 60), "lemon": (250, 232, 90), "green": (62, 152, 72),
    "emerald": (20, 142, 92), "olive": (122, 132, 52), "mint": (152, 222, 182), "lime": (162, 212, 62),
    "jade": (40, 160, 110), "sage": (150, 172, 130), "teal": (22, 132, 132), "cyan": (42, 202, 222),
    "turquoise": (52, 202, 192), "aqua": (70, 214, 214), "blue": (46, 96, 202), "navy": (22, 36, 92),
    "azure": (62, 142, 232), "sapphire": (26, 62, 162), "cobalt": (20, 72, 172), "indigo": (62, 42, 142),
    "purple": (122, 52, 162), "violet": (142, 82, 202), "lavender": (182, 162, 222), "lilac": (200, 162, 212),
    "plum": (122, 52, 102), "magenta": (202, 42, 152), "fuchsia": (222, 52, 162), "pink": (242, 132, 172),
    "rose": (222, 92, 122), "brown": (122, 82, 52), "chocolate": (92, 56, 36), "beige": (222, 202, 172),
    "cream": (246, 236, 212), "tan": (210, 180, 140), "bronze": (182, 122, 62), "copper": (192, 112, 62),
    "rust": (172, 72, 42), "white": (246, 246, 242), "ivory": (250, 246, 230), "silver": (192, 196, 206),
    "grey": (130, 132, 138), "gray": (130, 132, 138), "black": (22, 22, 26), "charcoal": (52, 54, 60),
}

SCENE_WORDS = {
    "mountains": "mountain peak alp alps summit cliff himalaya volcano ridge glacier everest highland",
    "ocean": "ocean sea beach wave coast shore island bay surf harbor harbour sail boat ship seaside tropical lagoon",
    "forest": "forest tree wood woods woodland jungle pine grove taiga rainforest camp cabin fir spruce",
    "city": "city urban skyline street building town tower skyscraper downtown metropolis cyberpunk architecture apartment",
    "desert": "desert dune sand sahara cactus canyon mesa arid oasis savanna",
    "hills": "hill meadow field valley countryside farm garden flower landscape prairie grass pasture park spring vineyard",
    "bauhaus": "abstract geometric bauhaus shape pattern modern poster circle square triangle logo icon minimal minimalist",
    "waves": "flow layer paper wavy curve swirl ripple calm zen papercut",
    "orbs": "gradient dream dreamy soft glow blur bokeh mesh background wallpaper pastel ethereal aura",
}

TIME_WORDS = {
    "sunset": "sunset dusk evening twilight sundown",
    "dawn": "dawn sunrise morning daybreak",
    "night": "night midnight star starry moon moonlit moonlight galaxy space nocturnal milky dark",
    "day": "day noon sunny afternoon daylight summer bright",
}

FEATURE_WORDS = {
    "snow": "snow snowy winter ice icy frost frozen glacier christmas arctic",
    "autumn": "autumn fall halloween harvest maple",
    "flowers": "flower blossom bloom garden spring tulip meadow floral",
    "neon": "neon cyberpunk synthwave vaporwave futuristic",
    "fog": "fog foggy mist misty haze hazy smoke",
    "rain": "rain rainy storm stormy thunder",
    "clouds": "cloud cloudy",
    "lake": "lake reflection pond mirror river",
    "palms": "tropical palm island beach paradise",
    "birds": "bird birds flock seagull",
    "stars": "star starry galaxy milky",
    "cactus": "cactus cacti saguaro",
}

SKY_TINT_WORDS = {"sky", "skies", "sun", "light", "glow", "cloud", "clouds", "sunset", "sunrise", "horizon"}

LANDSCAPES = ("mountains", "ocean", "forest", "city", "desert", "hills")
ABSTRACTS = ("bauhaus", "waves", "orbs")


def _index(table):
    index = {}
    for tag, words in table.items():
        for word in words.split():
            index.setdefault(word, []).append(tag)
    return index


_SCENE_INDEX = _index(SCENE_WORDS)
_TIME_INDEX = _index(TIME_WORDS)
_FEATURE_INDEX = _index(FEATURE_WORDS)


def _lookup(index, word):
    """Tags of a word, trying it as written, then without a plural ending."""
    for candidate in (word, word[:-1] if word.endswith("s") else None, word[:-2] if word.endswith("es") else None):
        if candidate and candidate in index:
            return index[candidate]
    return []


def _words(prompt):
    return re.findall(r"[a-z]+", prompt.lower())


@dataclass
class Plan:
    """What the prompt asks for: the composition, the light, and the colours it names."""

    scene: str
    time: str
    features: set = field(default_factory=set)
    subject_colours: list = field(default_factory=list)
    sky_tint: tuple | None = None
    hue: float = 0.0
    time_named: bool = False


def plan(prompt):
    """Read a prompt's words into a Plan; words it does not know decide by their hash."""
    words = _words(prompt)
    # A digest of the words, not of the seed: one prompt keeps its composition
    # across seeds, and the seed varies the details. Colour words are left out
    # so that "a red X" and "a blue X" differ in colour, not in composition.
    key = " ".join(word for word in words if word not in COLOUR_WORDS)
    word_hash = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    scores, times, features = {}, {}, set()
    for position, word in enumerate(words):
        for scene in _lookup(_SCENE_INDEX, word):
            first, count = scores.get(scene, (position, 0))
            scores[scene] = (first, count + 1)
        for time in _lookup(_TIME_INDEX, word):
            first, count = times.get(time, (position, 0))
            times[time] = (first, count + 1)
        features.update(_lookup(_FEATURE_INDEX, word))
    if "lake" in features and not scores:
        scores["mountains"] = (0, 1)
    if scores:
        scene = max(scores, key=lambda s: (scores[s][1], -scores[s][0]))
    else:
        scene = (LANDSCAPES + ABSTRACTS)[word_hash % (len(LANDSCAPES) + len(ABSTRACTS))]
    if times:
        time = max(times, key=lambda t: (times[t][1], -times[t][0]))
    elif "neon" in features:
        time = "night"
    else:
        time = ("day", "day", "day", "sunset", "sunset", "dawn", "night")[(word_hash >> 8) % 7]
    subject, sky_tint = [], None
    for position, word in enumerate(words):
        colour = COLOUR_WORDS.get(word)
        if colour is None:
            continue
        following = words[position + 1] if position + 1 < len(words) else ""
        if following in SKY_TINT_WORDS and sky_tint is None:
            sky_tint = colour
        else:
            subject.append(colour)
    hue = ((word_hash >> 16) % 360) / 360.0
    return Plan(scene, time, features, subject, sky_tint, hue, time_named=bool(times))
