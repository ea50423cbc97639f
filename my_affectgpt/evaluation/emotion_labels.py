"""Emotion vocabulary for evaluation: surface forms -> canonical labels -> basic emotion, polarity.

Open-vocabulary outputs name the same feeling in many ways ("joyful", "happiness", "very
cheerful"), so predictions and ground truth both pass through `normalize_label` before they are
compared. The table below (`GROUPS`) is the single source: each canonical label lists

- the surface forms that mean it (inflections and close synonyms),
- its basic emotion for hit rate, or None when it has none. The basic set is MER's (neutral,
  angry, happy, sad, worried, surprise) plus fear, disgust and contempt, which the synthetic
  data uses (the names of my_affectgpt.au.facs.EMOTION_PROTOTYPES normalise onto it),
- its polarity for sentiment: positive, negative, or neutral (no vote).

Words outside the table stay as they are (lower-cased, with intensity words such as "very"
removed): they are open-vocabulary labels in their own right, and exact matches still count.
"""
from __future__ import annotations

import ast
import re
from functools import lru_cache

BASIC_EMOTIONS = ("neutral", "happy", "sad", "angry", "worried", "surprise", "fear", "disgust",
                  "contempt")
POLARITIES = ("positive", "negative", "neutral")

# canonical label: (basic emotion or None, polarity, surface forms besides the label itself)
GROUPS: dict[str, tuple[str | None, str, tuple[str, ...]]] = {
    # -- positive
    "happy": ("happy", "positive", (
        "happiness", "happily", "joy", "joyful", "joyfully", "joyous", "cheerful", "cheerfully",
        "cheerfulness", "glad", "gladness", "delighted", "delight", "elated", "elation",
        "jubilant", "merry", "blissful", "bliss", "euphoric", "euphoria", "overjoyed", "pleased",
        "pleasure")),
    "excited": ("happy", "positive", (
        "excitement", "excitedly", "thrilled", "enthusiastic", "enthusiasm", "enthusiastically",
        "eager", "eagerness", "exhilarated")),
    "amused": ("happy", "positive", (
        "amusement", "humorous", "playful", "playfulness", "mirthful", "entertained")),
    "satisfied": ("happy", "positive", (
        "satisfaction", "contented", "contentment", "fulfilled", "gratified")),
    "relieved": ("happy", "positive", ("relief",)),
    "relaxed": (None, "positive", ("relaxation", "at ease", "carefree", "easygoing")),
    "proud": (None, "positive", ("pride", "proudly")),
    "grateful": (None, "positive", ("gratitude", "thankful", "appreciative")),
    "hopeful": (None, "positive", ("hope", "optimistic", "optimism")),
    "loving": (None, "positive", ("love", "affectionate", "affection", "tender", "tenderness")),
    "confident": (None, "positive", ("confidence", "self-assured", "assured")),
    "friendly": (None, "positive", ("amiable", "friendliness")),
    "determined": (None, "positive", ("determination", "resolute")),
    # -- neutral
    "neutral": ("neutral", "neutral", (
        "neutrality", "expressionless", "impassive", "unemotional", "emotionless", "indifferent",
        "indifference")),
    "calm": ("neutral", "neutral", (
        "calmly", "calmness", "composed", "serene", "serenity", "peaceful", "tranquil", "placid")),
    "serious": (None, "neutral", ("seriousness", "solemn", "earnest")),
    "curious": (None, "neutral", ("curiosity", "inquisitive", "intrigued")),
    "shy": (None, "neutral", ("shyness", "bashful", "timid")),
    "surprised": ("surprise", "neutral", (
        "surprise", "surprising", "astonished", "astonishment", "amazed", "amazement",
        "shocked", "shock", "stunned", "startled", "astounded", "dumbfounded")),
    # -- negative
    "sad": ("sad", "negative", (
        "sadly", "sadness", "sorrow", "sorrowful", "unhappy", "unhappiness", "depressed",
        "depression", "melancholy", "melancholic", "gloomy", "gloom", "downcast", "heartbroken",
        "grief", "grieving", "grief-stricken", "mournful", "miserable", "misery", "dejected",
        "despondent", "tearful", "despair")),
    "disappointed": ("sad", "negative", ("disappointment", "disheartened", "discouraged")),
    "lonely": ("sad", "negative", ("loneliness",)),
    "helpless": (None, "negative", ("helplessness", "powerless", "hopeless", "hopelessness")),
    "guilty": (None, "negative", ("guilt", "remorseful", "remorse", "regretful", "regret")),
    "ashamed": (None, "negative", ("shame",)),
    "embarrassed": (None, "negative", ("embarrassment", "awkward", "humiliated", "humiliation")),
    "angry": ("angry", "negative", (
        "angrily", "anger", "furious", "furiously", "fury", "rage", "enraged", "outraged",
        "outrage", "mad", "irate", "irritated", "irritation", "irritable", "annoyed", "annoyance",
        "indignant", "indignation", "resentful", "resentment", "hostile", "hostility", "livid")),
    "frustrated": ("angry", "negative", ("frustration", "exasperated", "exasperation")),
    "upset": (None, "negative", ("distressed", "distress", "troubled", "disturbed")),
    "worried": ("worried", "negative", (
        "worry", "anxious", "anxiously", "anxiety", "nervous", "nervously", "nervousness",
        "uneasy", "unease", "uneasiness", "concerned", "apprehensive", "apprehension", "tense",
        "tension", "stressed", "stress", "restless")),
    "fearful": ("fear", "negative", (
        "fear", "fearfully", "afraid", "scared", "frightened", "terrified", "terror", "panicked",
        "panic", "panicky", "horrified", "horror", "dread", "petrified")),
    "disgusted": ("disgust", "negative", (
        "disgust", "revolted", "repulsed", "revulsion", "sickened", "loathing", "grossed out",
        "nauseated")),
    "contemptuous": ("contempt", "negative", (
        "contempt", "disdain", "disdainful", "scorn", "scornful", "sneering", "derisive",
        "derision", "mocking", "condescending")),
    "sarcastic": (None, "negative", ("sarcasm",)),
    "confused": (None, "negative", ("confusion", "puzzled", "perplexed", "bewildered", "baffled")),
    "doubtful": (None, "negative", (
        "doubt", "skeptical", "sceptical", "suspicious", "suspicion", "distrustful", "distrust",
        "dubious")),
    "bored": (None, "negative", ("boredom", "uninterested")),
    "tired": (None, "negative", ("weary", "exhausted", "fatigued", "fatigue")),
    "jealous": (None, "negative", ("jealousy", "envious", "envy")),
}

# Forms too often used in a non-emotional sense in running text ("I hope", "would love to",
# "composed of", "stress the point") to be picked up from free text; in a label list they count.
FREE_TEXT_EXCLUDED = frozenset({"hope", "love", "tender", "composed", "assured", "mad", "stress",
                                "shock", "regret", "doubt"})

# Words that negate an emotion word shortly after them in the same clause.
NEGATORS = frozenset({"not", "no", "never", "without", "hardly", "nor", "neither",
                      "cannot", "lack", "lacks", "lacking", "absence", "free"})
NEGATION_WINDOW = 3  # a negator at most this many words before the emotion word

# Leading / trailing words that qualify a label without changing it ("very happy", "happy mood").
_LEADING = frozenset({"a", "an", "the", "very", "really", "quite", "rather", "slightly",
                      "somewhat", "extremely", "highly", "deeply", "mildly", "fairly", "so", "too",
                      "bit", "little", "more", "most", "mostly", "mainly", "possibly", "probably",
                      "maybe", "perhaps", "slight", "mild", "strong", "intense", "deep", "great",
                      "extreme", "overall", "feeling", "feel", "feels", "being", "kind", "sort",
                      "of", "sense", "some", "strongly", "visibly", "clearly"})
_TRAILING = frozenset({"emotion", "emotions", "mood", "feeling", "feelings", "state",
                       "expression", "tone", "attitude"})
NONE_WORDS = frozenset({"none", "n a", "na", "nothing", "unknown", "no emotion", "no emotions",
                        "unclear", "null"})

_WORD = re.compile(r"[a-z]+(?:['’-][a-z]+)*")


@lru_cache(maxsize=1)
def surface_table() -> dict[str, str]:
    """surface form -> canonical label (every canonical label maps to itself)."""
    table: dict[str, str] = {}
    for canon, (_, _, forms) in GROUPS.items():
        for form in (canon, *forms):
            if table.setdefault(form, canon) != canon:
                raise AssertionError(f"'{form}' is listed under '{table[form]}' and '{canon}'")
    return table


def synonyms(canonical: str) -> tuple[str, ...]:
    """All surface forms of a canonical label, the label first; () for an unknown label."""
    group = GROUPS.get(canonical)
    return (canonical, *group[2]) if group else ()


def clean_label(text: str) -> str:
    """Lower-case, strip quotes, brackets, punctuation and qualifiers: ' "Very Happy mood." ' ->
    'happy'. Returns '' when nothing is left."""
    words = _WORD.findall(str(text).lower().replace("’", "'"))
    while len(words) > 1 and words[0] in _LEADING:
        words.pop(0)
    while len(words) > 1 and words[-1] in _TRAILING:
        words.pop()
    return " ".join(words)


def _lemma_candidates(word: str):
    yield word
    if " " in word:
        return
    # Inflections the table does not spell out: gloomily -> gloomy, cheerfulness -> cheerful.
    if word.endswith("ily"):
        yield word[:-3] + "y"
    if word.endswith("ly"):
        yield word[:-2]
    if word.endswith("iness"):
        yield word[:-5] + "y"
    if word.endswith("ness"):
        yield word[:-4]


def normalize_label(text: str) -> str:
    """The canonical label of a surface form ('Joyful' -> 'happy'); an unknown label comes back
    cleaned but otherwise as it is ('self-deprecating'); '' for an empty one."""
    label = clean_label(text)
    table = surface_table()
    for cand in _lemma_candidates(label):
        if cand in table:
            return table[cand]
    return label


def basic_emotion(label: str) -> str | None:
    """The basic emotion of a label (any surface form), or None when it has none."""
    canon = normalize_label(label)
    group = GROUPS.get(canon)
    if group is not None:
        return group[0]
    return canon if canon in BASIC_EMOTIONS else None


def polarity(label: str) -> str | None:
    """positive / negative / neutral for a known label, None for an unknown one."""
    group = GROUPS.get(normalize_label(label))
    return group[1] if group else None


def is_negated_phrase(text: str) -> bool:
    """True for a list item such as 'not happy' or "isn't angry"."""
    words = _WORD.findall(str(text).lower().replace("’", "'"))
    return any(w in NEGATORS or w.endswith("n't") for w in words[:NEGATION_WINDOW])


_LIST_SPLIT = re.compile(r"[,;\n|•]|\s+(?:and|or|&)\s+", re.I)
_BULLET = re.compile(r"^\s*(?:[-*]|\d+[.)])\s+")


def split_label_list(text) -> list[str]:
    """Raw items of a label list: "['happy', 'excited']", 'happy, excited', '1. happy\\n2. sad'."""
    if text is None:
        return []
    text = str(text).strip()
    if text.startswith("[") and text.endswith("]"):
        try:  # a Python / JSON list literal as MER-Caption+ CSVs store them
            value = ast.literal_eval(text)
            if isinstance(value, (list, tuple)):
                return [str(v).strip() for v in value if str(v).strip()]
        except (ValueError, SyntaxError):
            text = text[1:-1]
    items = []
    for part in _LIST_SPLIT.split(text):
        part = _BULLET.sub("", part).strip().strip("'\"`[]().:!?").strip()
        if part:
            items.append(part)
    return items


def labels_from_list(text) -> list[str]:
    """Canonical labels of a label list, in order, without duplicates, negated items or 'none'."""
    out: list[str] = []
    for item in split_label_list(text):
        if is_negated_phrase(item) or clean_label(item) in NONE_WORDS:
            continue
        label = normalize_label(item)
        if len(label) > 1 and label not in out:
            out.append(label)
    return out
