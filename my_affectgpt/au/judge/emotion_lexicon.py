"""Emotion words for the AU judge, derived from Princeton WordNet 3.0 (not hand-picked).

`emotion_words(text)` finds words that name an emotion, mood or feeling. The vocabulary is the
data file `data/emotion_words.txt`, regenerated deterministically by

    python -m my_affectgpt.au.judge.emotion_lexicon build --wordnet-dir DIR --out FILE

from the WordNet 3.0 database files (data.*, index.*, LICENSE). Selection:

- nouns: synsets of the lexicographer file noun.feeling (12) that descend, by hyponymy, from
  feeling (n, 00026192), plus that root;
- verbs: synsets of verb.emotion (37);
- adjectives: synsets those nouns/verbs point to with derivation '+', attribute '=' or
  pertainym '\\' (and adjective synsets pointing back at them), plus adjectives that are the
  derivational or attribute partner of an emotion noun lemma ("cheerful" <- "cheerfulness"),
  plus the head adjective of a cluster most of whose satellites (at least two) are emotion
  adjectives ("composed": calm, collected, unflurried, imperturbable);
- adverbs: pertainyms of those adjectives ("cheerfully" -> "cheerful"), or derived from the
  nouns/verbs.

A lemma is kept only where the emotion sense is among its two most frequent senses in WordNet's
sense order: "draw" and "move" are verb.emotion lemmas, but a face description uses them for
movement. Words that are facial movements, muscle states, intensity words or bodily sensations
in this domain are excluded by the list `EXCLUDED` below (each with its reason).
"""
from __future__ import annotations

import argparse
import re
import sys
from functools import lru_cache
from pathlib import Path

from my_affectgpt.common.atomic import atomic_write_text
from my_affectgpt.common.errors import InputError, cli_entry

DATA_FILE = Path(__file__).with_name("data") / "emotion_words.txt"
FEELING_ROOT = "00026192"      # feeling.n.01 (noun.Tops), the root of noun.feeling
NOUN_FEELING, VERB_EMOTION = 12, 37
MAX_SENSE_RANK = 2             # the emotion sense must be one of the two most frequent senses
_POS = {"noun": "n", "verb": "v", "adj": "a", "adv": "r"}

# Why each WordNet lemma is left out.
FACE = "a facial movement or expression, scored as movement (AU) not as emotion"
MUSCLE = "a muscle state in face descriptions (tense lips, relaxed brows)"
AUWORD = "a face, movement, direction or intensity word in AU descriptions"
BODY = "a bodily sensation or condition, not an emotion"
POLY = "its everyday non-emotional sense dominates in descriptions"
GENERIC = "the category word itself; it names no particular emotion"
EXCLUDED: dict[str, str] = {w: why for why, words in (  # "_" joins a multi-word entry
    (GENERIC, "emotion emotional emotionally feeling feelings mood feel"),
    (FACE, "smile frown grimace grin sneer pout scowl glower glowering gloweringly beaming wince "
            "moue deadpan poker-faced expressionless unexpressive expressive"),
    (MUSCLE, "tense tenseness tension tensity strain relaxed relax relaxation repose stiffness "
            "uptightness"),
    (AUWORD, "mild gentle light lightly lowering loweringly heavy together close closely still low "
            "faint faintly soft sharply leaning bristly lift_up suck_up buoy_up take_down quiver "
            "shiver shudder shivery shuddery tremble open set pull draw sink sinking_feeling "
            "agape depress downcast cast_down"),
    (BODY, "pain painful painfully painfulness ache itch itchy nausea nauseous nauseating queasy "
            "hunger hungriness hungry peckish thirst thirstily athirst chafe chafing intertrigo "
            "tingle twinge sore soreness swollen inflammatory fever chill faintness light-headed "
            "lightheaded swooning scratchy chesty tickle salivate fatigue sweet_tooth hungrily "
            "ravenously tasty tastily spicily piquantly phlegm phlegmy spleen splenic lividity "
            "disorder distemper stomach appetite growing_pains creepy-crawlies stupor daze "
            "sexual_urge libido the_hots sex lethargic lethargically unenrgetic unenergetically"),
    (POLY, "like long miss affect nerve steel floor strike capture pierce engrave burst overflow "
            "nurse wean poise plume rack grate ghost pall spur jolt sizzle lacerate wound bruise "
            "crucify demolish efface devour injure smite rag disarm cling attract beckon besiege "
            "look_for look_to overpower play_up put_off sweep_away unbalance stir stir_up kick "
            "taste impulse tendency insight defeat conflict isolation lowness heaviness quiet "
            "quietly quietness quieten secure securely casual casually poor poorly ill badly "
            "nearly dear dearly awfully sorely animal waxy yeasty soupy electric affirmative "
            "resonant upstage thing complex glow stab touch move get hit eat fuel cloud invite "
            "jar impressive impressively imposingly cross crossly perceptive perceptively "
            "perceptiveness perceptivity fleshly godly skanky kitschy hokey potty barmy mellowed "
            "warpath acutely hugely enormously tremendously staggeringly screamingly monstrously "
            "terrifically toppingly superbly easily easy alone solo unaccompanied compatible "
            "dedicated compatibly compatibility confidential gravel entrance stewing trance zap "
            "express_emotion express_feelings"),
) for w in words.split()}


def _parse_data(path: Path, pos: str, synsets: dict, heads: set | None = None) -> None:
    """Read one WordNet data file into synsets[(pos, offset)] = (lex_filenum, words, pointers);
    `heads` collects the head synsets of adjective clusters (ss_type "a", not satellite "s")."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("  "):   # the licence header lines start with spaces
            continue
        f = line.split(" | ", 1)[0].split()
        n = int(f[3], 16)
        words = [re.sub(r"\([a-z]+\)$", "", f[4 + 2 * i]).lower() for i in range(n)]
        i = 4 + 2 * n
        ptrs = []
        for j in range(int(f[i])):
            sym, off, p, src_tgt = f[i + 1 + 4 * j: i + 5 + 4 * j]
            ptrs.append((sym, ("a" if p == "s" else p, off),
                         (int(src_tgt[:2], 16), int(src_tgt[2:], 16))))
        synsets[(pos, f[0])] = (int(f[1]), words, ptrs)
        if heads is not None and f[2] == "a":
            heads.add((pos, f[0]))


def _parse_index(path: Path) -> dict:
    """lemma -> its synset offsets, most frequent sense first."""
    senses = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("  "):
            continue
        f = line.split()
        senses[f[0]] = f[-int(f[2]):]
    return senses


def collect(wordnet_dir) -> list[str]:
    """The emotion lemmas (spaces for multiword entries), sorted, exclusions removed."""
    d = Path(wordnet_dir)
    for name in ("data.noun", "data.verb", "data.adj", "data.adv", "index.noun", "LICENSE"):
        if not (d / name).is_file():
            raise InputError(d / name, "not found: --wordnet-dir must hold the WordNet 3.0 "
                                       "database files")
    syn: dict = {}
    heads: set = set()
    for file, pos in _POS.items():
        _parse_data(d / f"data.{file}", pos, syn, heads)
    ranks = {pos: _parse_index(d / f"index.{file}") for file, pos in _POS.items()}

    root = ("n", FEELING_ROOT)
    nouns, stack = {root}, [root]
    while stack:                       # hyponyms of feeling inside noun.feeling
        for sym, key, _ in syn[stack.pop()][2]:
            if sym in ("~", "~i") and key not in nouns and syn[key][0] == NOUN_FEELING:
                nouns.add(key)
                stack.append(key)
    verbs = {k for k, v in syn.items() if k[0] == "v" and v[0] == VERB_EMOTION}
    base = nouns | verbs
    linked = ("+", "=", "\\")
    adjs = {key for k in base for sym, key, _ in syn[k][2] if sym in linked and key[0] == "a"}
    advs = {key for k in base for sym, key, _ in syn[k][2] if sym in linked and key[0] == "r"}
    for k, (_, _, ptrs) in syn.items():
        if k[0] in "ar" and any(sym in linked and key in base for sym, key, _ in ptrs):
            (adjs if k[0] == "a" else advs).add(k)

    def keep(keys, pos):
        out = set()
        for k in keys:
            for w in syn[k][1]:
                if k[1] in ranks[pos].get(w, ())[:MAX_SENSE_RANK]:
                    out.add(w)
        return out

    noun_words = keep(nouns, "n")
    adj_words = keep(adjs, "a")
    # Word-level partners: an emotion noun's own derivation pointer, from any of its senses,
    # names its adjective ("cheerfulness" -> "cheerful", whose linked sense is an attribute).
    for k, (_, words, ptrs) in syn.items():
        for sym, key, (src, tgt) in ptrs:
            if (sym == "+" and k[0] == "n" and key[0] == "a" and src and words[src - 1] in
                    noun_words and key[1] in ranks["a"].get(syn[key][1][tgt - 1], ())[:1]):
                adj_words.add(syn[key][1][tgt - 1])
                adjs.add(key)
    adj_keys = {k for k in adjs if any(k[1] in ranks["a"].get(w, ())[:MAX_SENSE_RANK]
                                       for w in syn[k][1])}
    def emotional(key) -> bool:        # a kept adjective has this satellite among its senses
        return any(w in adj_words and w not in EXCLUDED
                   and key[1] in ranks["a"].get(w, ())[:MAX_SENSE_RANK] for w in syn[key][1])
    new_heads = set()
    for k in sorted(heads):            # a cluster head most of whose satellites are emotional
        sats = [key for sym, key, _ in syn[k][2] if sym == "&"]
        if len(sats) >= 2 and 2 * sum(map(emotional, sats)) > len(sats):
            new_heads.add(k)
    adj_words |= keep(new_heads, "a")
    adj_keys |= {k for k in new_heads if keep({k}, "a")}
    for k, (_, _, ptrs) in syn.items():        # adverbs that pertain to the kept adjectives
        if k[0] == "r" and any(sym == "\\" and key in adj_keys for sym, key, _ in ptrs):
            advs.add(k)
    words = noun_words | keep(verbs, "v") | adj_words | keep(advs, "r")
    return sorted({w.replace("_", " ") for w in words
                   if w not in EXCLUDED and w.replace("_", " ") not in EXCLUDED})


def header(wordnet_dir) -> str:
    licence = (Path(wordnet_dir) / "LICENSE").read_text(encoding="utf-8")
    lines = [
        "Emotion words for the AU judge (my_affectgpt.au.judge.emotion_lexicon).",
        "Source: Princeton WordNet 3.0 - lemmas of noun.feeling synsets descending from",
        "feeling (n 00026192), of verb.emotion, and the adjectives/adverbs linked to them by",
        "derivation (+), attribute (=) or pertainym (\\) pointers, with the other adjectives of",
        "those synsets, the adjective an emotion noun derives from (cheerfulness ->",
        "cheerful), and the head adjective of a cluster most of whose satellites (at least two)",
        "are emotion adjectives (composed); a lemma is kept where the emotion sense is among its",
        f"{MAX_SENSE_RANK} most frequent senses. Made by:",
        "  python -m my_affectgpt.au.judge.emotion_lexicon build "
        "--wordnet-dir WORDNET-3.0-DIR --out my_affectgpt/au/judge/data/emotion_words.txt",
        "Excluded (word: reason):",
        *(f"  {w.replace('_', ' ')}: {why}" for w, why in sorted(EXCLUDED.items())),
        "WordNet 3.0 licence (kept as it requires):",
        *(ln.rstrip() for ln in licence.strip("\n").splitlines()),
    ]
    return "".join(f"# {ln}".rstrip() + "\n" for ln in lines)


def build(wordnet_dir, out) -> int:
    words = collect(wordnet_dir)
    atomic_write_text(out, header(wordnet_dir) + "".join(w + "\n" for w in words))
    return len(words)


# --- matching -------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def lemmas(path: str | None = None) -> tuple[str, ...]:
    text = Path(path or DATA_FILE).read_text(encoding="utf-8")
    return tuple(ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#"))


def _forms(word: str) -> set[str]:
    """Regular inflections: -s/-es, -ed, -ing, -er/-est, -ly, -ness (with y/e/doubling rules)."""
    out = {word}
    if len(word) < 3 or not word.isalpha():
        return out
    stem = word[:-1] if word.endswith("e") else word
    out |= {word + "s", word + "es", stem + "ed", stem + "ing", stem + "er", stem + "est",
            word + "ly", word + "ness"}
    if word.endswith("y") and word[-2] not in "aeiou":
        y = word[:-1]
        out |= {y + "ies", y + "ied", y + "ier", y + "iest", y + "ily", y + "iness"}
    if word.endswith("le"):
        out.add(word[:-1] + "y")                                   # gentle -> gently
    if word.endswith("ic"):
        out.add(word + "ally")                                     # euphoric -> euphorically
    if re.search(r"[^aeiou][aeiou][bdgklmnprt]$", word):          # CVC: doubled consonant
        out |= {word + word[-1] + "ed", word + word[-1] + "ing"}
    return out


@lru_cache(maxsize=None)
def _index() -> dict:
    """first token -> [(tokens, ...)], longest phrases first; the first or last word inflects."""
    index: dict = {}
    for lemma in lemmas():
        toks = lemma.split()
        variants = {tuple(toks)}
        for f in _forms(toks[0]):
            variants.add((f, *toks[1:]))
        if len(toks) > 1:
            for f in _forms(toks[-1]):
                variants.add((*toks[:-1], f))
        for v in variants:
            if v[-1] in EXCLUDED or (len(v) == 1 and v[0] in _BLOCKED_FORMS):
                continue
            index.setdefault(v[0], set()).add(v)
    return {k: sorted(v, key=len, reverse=True) for k, v in index.items()}


# Generated forms that collide with movement words ("cheerfulness" is fine, "lower" is not).
_BLOCKED_FORMS = frozenset({"please", "lower", "lowered", "raised", "drawn", "parted", "closer",
                            "lifted", "opened", "pressed", "tensed", "relaxed"})
_TOKEN = re.compile(r"[a-z]+(?:['-][a-z]+)*")
# a word whose sense before "of" is not the emotion one: "an expression composed of AU6 and AU12"
_NOT_BEFORE_OF = frozenset({"composed"})


def emotion_words(text: str) -> list[str]:
    """Emotion words in `text`, lower-cased, in order (multiword entries as one phrase)."""
    toks = _TOKEN.findall(text.lower().replace("\u2019", "'"))
    index, out, i = _index(), [], 0
    while i < len(toks):
        for cand in index.get(toks[i], ()):
            if tuple(toks[i:i + len(cand)]) == cand:
                if cand[-1] in _NOT_BEFORE_OF and toks[i + len(cand):i + len(cand) + 1] == ["of"]:
                    continue
                out.append(" ".join(cand))
                i += len(cand)
                break
        else:
            i += 1
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m my_affectgpt.au.judge.emotion_lexicon",
                                description="Build the WordNet emotion vocabulary.")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="regenerate the data file from WordNet 3.0")
    b.add_argument("--wordnet-dir", required=True, help="folder with data.noun, index.noun, ...")
    b.add_argument("--out", default=str(DATA_FILE), help=f"output file (default {DATA_FILE})")
    return p


@cli_entry
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    n = build(args.wordnet_dir, args.out)
    print(f"wrote {n} emotion lemmas to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
