"""The AU judge's own vocabulary: face parts, movements, direct cues, intensity and negation words.

Written from the annotation guideline (tests/data/au_judge_guideline.md) and FACS, independently
of the words the rule teacher writes with, so the judge can score that teacher fairly too.

A movement is read as a face PART plus a MOVE ("the cheeks lift", "a lift of the cheeks",
"lowered brows", "brow lowerer"); `COMBOS[move][part]` says which AUs that pair asserts. Direct
CUES need no part ("smile", "crow's feet"), nor do MUSCLES (which assert nothing at rest).
`UNMAPPED` marks movements that are none of OpenFace's 18 AUs (puckered lips, head tilt). The
compiled tables at the end are matched on lower-cased text; the reader resolves overlaps by
keeping the longest match.
"""
from __future__ import annotations

import re

from .patterns import WS, V, W, alt, compiled

UNMAPPED = "unmapped"   # a COMBOS/CUES value: a facial movement outside the 18 AUs
NEUTRAL = ()            # a pair that asserts nothing ("eyes open", "mouth closed")


# --- face parts -------------------------------------------------------------------------------
DET = r"(?:(?:the|her|his|their|its|both|each|either|\w+['’]s)\s+)?"   # "Ellen's brows"
BROW = r"(?:eye[- ]?)?brows?"
SEG = W("ends?", "corners?", "parts?", "portions?", "edges?", "sections?", "heads?", "halves",
        "half", "tips?", "points?", "segments?", "regions?", "areas?", "sides?", "margins?",
        "fibres", "fibers", "tails?", "thirds?", "bits?")
_BARE_SEG = W("ends?", "tips?", "parts?", "portions?", "halves", "half", "heads?", "thirds?",
              "sections?", "bits?", "tails?", r"(?:(?<=inner\s)|(?<=medial\s))corners?(?!\s+of)")
EYE_SEG = W("corners?", "edges?", "sides?", "outer corners?", "outer edges?")


def _brow_part(side: str) -> str:
    return alt(rf"{side}[- ]{BROW}(?:\s+{SEG})?", rf"{side}\s+(?:\(\w+\)\s+)?{SEG}\s+of\s+{DET}{BROW}",
               rf"{BROW}['’]?s?\s+{side}\s+{SEG}")


_BOTH_SIDES = (r"(?:both\s+)?(?:the\s+)?(?:(?:inner|inside)\s+(?:ends?\s+)?and\s+(?:the\s+)?(?:outer|outside)"
               r"|(?:outer|outside)\s+(?:ends?\s+)?and\s+(?:the\s+)?(?:inner|inside))")


PARTS: dict[str, str] = {
    "inner_brows": alt(_brow_part(W("inner", "medial", "inside", "middle")), rf"{W('inner', 'medial', 'inside')}\s+{_BARE_SEG}",
                       r"(?:medial|central)\s+forehead", r"mid-?forehead",
                       rf"(?:middle|cent(?:er|re))\s+of\s+{DET}{BROW}"),
    "outer_brows": alt(_brow_part(W("outer", "lateral", "outside")), rf"{BROW}\s+tails?", r"tails",
                       rf"{W('outer', 'lateral', 'outside')}\s+{_BARE_SEG}", r"lateral\s+forehead",
                       rf"tails?[\s-]+of[\s-]+{DET}{BROW}"),
    "brows": alt(rf"{_BOTH_SIDES}\s+(?:{SEG}\s+of\s+{DET})?{BROW}", rf"{_BOTH_SIDES}\s+{SEG}", BROW,
                 r"brow\s*line", r"brow\s+ridges?"),
    "forehead": r"foreheads?",
    "upper_lids": r"(?:upper|top)\s+(?:eye[- ]?)?lids?",
    "lower_lids": r"(?:lower|bottom)\s+(?:eye[- ]?)?lids?",
    "lids": r"(?:eye[- ]?)?lids?",
    "eye_corners": alt(rf"{EYE_SEG}\s+of\s+{DET}eyes?", r"(?:outer\s+)?eye\s+corners?"),
    "eyes": alt(r"eyes?|eyeballs?|palpebral\s+fissures?|eye\s+(?:apertures?|openings?)",
                r"(?:peri)?ocular|orbital\s+(?:region|area)"),
    "cheeks": alt(r"cheeks?", r"cheekbones?", rf"(?:apples?|tops?)\s+of\s+{DET}cheeks?"),
    "nose": alt(r"nose", r"nasal(?:\s+(?:bridge|dorsum))?", r"dorsum(?:\s+of\s+the\s+nose)?", r"bridge",
                rf"(?:bridge|sides?|root)\s+of\s+{DET}nose"),
    "nostrils": r"nostrils?|nares|(?:nasal\s+)?alae|nasal\s+wings?",
    "upper_lip": r"(?:upper|top)[\s-]lip",
    "lower_lip": r"(?:lower|bottom)[\s-]lip",
    "lip_corners": alt(r"(?:lip|mouth)[- ]?corners?", rf"corners?\s+of\s+{DET}(?:mouth|lips)",
                       r"(?:oral\s+)?commissures?", rf"angles?\s+of\s+{DET}mouth",
                       r"(?:lip|mouth)\s+angles?"),
    "corners": r"corners?",
    "lips": r"lips?|vermilions?(?:\s+borders?)?",
    "mouth": r"mouth|(?:peri)?oral(?!\s+commissures?)",
    "jaw": r"(?:lower\s+)?jaw(?:\s*line)?|mandible|mandibular",
    "chin": r"chin(?:\s+boss)?|mentum|mental\s+(?:region|crease)",
    "upper_face": alt(r"upper[- ](?:half\s+of\s+(?:the\s+)?)?face", r"upper[- ]facial(?:\s+region)?",
                      rf"top\s+half\s+of\s+{DET}face", r"brow\s+and\s+eye\s+(?:region|area)s?"),
    "lower_face": alt(r"lower[- ](?:half\s+of\s+(?:the\s+)?)?face", r"lower[- ]facial(?:\s+region)?",
                      rf"bottom\s+half\s+of\s+{DET}face"),
    "head": r"head",
    "gaze": r"gaze|line\s+of\s+sight",
    "teeth": r"teeth|tooth",
    "tongue": r"tongue",
}
NON_AU_PARTS = frozenset({"head", "gaze", "nostrils", "teeth", "tongue"})

# --- movements --------------------------------------------------------------------------------
# between a verb and its direction: "pulled slightly up", "dragged way, way down", "a little wide"
ADVERB = (r"(?:\s+(?:\w+ly|way|far|well|right|straight|hard|high|all\s+the\s+way|very|so|quite|"
          r"rather|pretty|really|just|only|even|too|some|"
          r"a\s+(?:bit|little|touch|hair|tad|fraction|smidge|shade|trifle))\b,?){0,3}")
RAISE = alt(V("raise", "lift", "elevate", "hike", "hoist", "climb"), r"upraised", r"elevation", r"rise[sn]?",
            r"rising", r"rose")
UP = W("up", "upward", "upwards", "high", "higher", "skyward", "skywards")
DOWN = W("down", "downward", "downwards")
DIR_VERBS = V("pull", "draw", "push", "turn", "curl", "tug!", "move", "go", "perk", "angle",
              "curve", "quirk", "hitch", "tick", "flick", "slant", "point", "shift", "sweep",
              "bend", "tilt", "hook", "fly", "shoot", "jump!", "climb", "leap", "spring", "creep",
              "inch", "edge", "yank", "jerk", "hoist", "crook", "ride", "pop!", "float", "drift",
              "arc", "sink", "slide", "tip!", "kick", "crawl", "drag!", "haul", "wrench", "shove",
              "slip!", "twitch",
              "nudge", "dip!", "come", "fling", "hike", "strain", "crash", "slam!", "snap!", "plunge",
              "dive", "hang", "let")
_SIDEWAYS = "back backward backwards sideways laterally outward outwards horizontally"
_SIDE_WORDS = W(*_SIDEWAYS.split(), r"wide(?!\s+open)", "widely")
_IN = r"in(?!\s+(?:a|an|the)\b)"    # "drawn in", not "pressed in a line"
DIR = alt(DIR_VERBS, r"drawn", r"drew", r"driven", r"drove", r"went", r"gone", r"goes", r"bent",
          r"swept", r"flew", r"flown",
          r"flies", r"shot", r"leapt", r"sprang", r"sprung", r"rode", r"sank", r"sunk", r"slid",
          r"came", r"flung")
_DIR_NOUN = V("pull", "push", "turn", "curl", "tilt", "curve", "lift", "draw", "stretch", "spread",
              "movement", "tug!", "drag!", "shift", "slant", "hitch", "tension", "traction")                      # "an upward pull", "a sideways stretch"
_TRAIL = (r"(?:\s+(?:(?:just|only|quite)\s+)?(?:a\s+(?:little|bit|touch|hair|tad|smidge|fraction|trace|"
          r"tiny\s+bit|little\s+bit|lot)|slightly|some|very\s+much|quite\s+much|much|\w+ly))?")
_BARE_END = (rf"{_TRAIL}"
             r"(?=\s*(?:[.,;:!)\n—–-]|$|\b(?:and|but|with|while)\b))")
_RAISE_ARCH = alt(RAISE, r"arched|arching|arches", rf"{DIR}\s+{UP}")
MOVES: dict[str, str] = {
    "raise_inner": alt(rf"{_RAISE_ARCH}{ADVERB}\s+(?:in|at|toward|towards)\s+the\s+"
                       rf"{W('middle', 'center', 'centre')}(?!\s+of\s+{DET}(?:upper\s+|lower\s+|top\s+)?"
                       r"(?:lips?|mouth|chin|nose))", rf"{RAISE}\s+medially",
                       rf"{_RAISE_ARCH}(?:\s+up)?{ADVERB}\s+at\s+the\s+inner\s+{SEG}"),
    # "an inner lift", "medial elevation": the brows go without saying
    "raise_inner_noun": alt(rf"{W('medial', 'inner', 'central')}\s+{RAISE}", rf"medially\s+{RAISE}"),
    "raise_outer": alt(rf"{_RAISE_ARCH}(?:\s+up)?{ADVERB}\s+at\s+the\s+outer\s+{SEG}", rf"{RAISE}\s+laterally"),
    "raise_outer_noun": rf"{W('lateral', 'outer')}\s+{RAISE}",
    "up": alt(rf"{DIR}{ADVERB}\s+{UP}{_TRAIL}", r"up[- ]?turned", r"turned[- ]up", r"upturn(?:s|ing)?",
              rf"{UP}\s+{_DIR_NOUN}", r"upwards?"),
    "down": alt(rf"{DIR}{ADVERB}\s+{DOWN}{_TRAIL}", r"down[- ]?turned", r"turned[- ]down",
                r"downturn(?:s|ing)?", rf"{DOWN}\s+{_DIR_NOUN}", r"downwards?"),
    # a bare direction after its part, in notes: "Brows up.", "cheeks slightly up", "corners down"
    "up_bare": rf"{W('up', 'high', 'higher')}{_BARE_END}",
    "down_bare": rf"down{_BARE_END}",
    "raise": RAISE,
    "retract": alt(V("retract"), r"retractions?"),
    "lower": alt(V("lower", "depress", "dip!", "sink", "descend"), r"depressors?", r"depression",
                 r"sank|sunk", r"descent"),
    "drop": alt(V("drop!", "slacken", "hang"), r"slack", r"hung", r"fall(?:s|en|ing)?",
                r"fell", r"loosen(?:s|ed|ing)?", r"unhinged"),
    "together": alt(rf"{alt(DIR, V('knit!', 'pinch', 'bring', 'come', 'squeeze', 'gather', 'scrunch', 'crush'))}"
                    rf"{ADVERB}[\s-]+(?:closer\s+)?together", r"drawn\s+(?:closer\s+)?together",
                    r"brought\s+together"),
    "furrow": alt(V("furrow", "knit!", "knot!", "pinch", "crease", "contract", "scrunch", "beetle",
                    "crumple"), r"contractions?"),
    "frown": alt(V("frown", "scowl", "glower", "lour", "glare"), r"frowny"),
    "arch": alt(r"arch|arched|arching|arches", V("cock", "quirk")),
    "bulge_eyes": alt(r"bug(?:s|ged|ging)?(?:\s+out)?", r"goggl(?:e|es|ed|ing)", r"huge", r"enormous",
                      r"saucers?"),
    "round": alt(rf"{alt(V('go', 'grow', 'get', 'become'), 'went', 'gone', 'grew', 'grown', 'got')}"
                 r"\s+(?:\w+\s+)?(?:round|big|huge|wide|large|enormous)", r"rounded",
                 r"saucer[- ]like|like\s+saucers|as\s+big\s+as\s+saucers", r"pop(?:s|ped|ping)?\s+(?:open|out|wide)"),
    "oblique": alt(r"oblique(?:ly)?", rf"{V('slant', 'angle', 'tilt')}{ADVERB}\s+{UP}",
                   r"slanted|slanting"),
    "wide_open": alt(r"wide[- ]open(?:ed)?", rf"{V('open')}\s+wide", r"gap(?:e|es|ed|ing)",
                     r"agape", rf"{V('stretch')}\s+wide\s+open",
                     rf"{alt(V('fly', 'fling', 'snap!', 'pop!', 'spring'), 'flew', 'flown', 'flung', 'sprang', 'sprung')}"
                     rf"(?:\s+wide)?\s+open"),
    "widen": alt(V("widen"), r"wide", r"wider", rf"{V('open')}{ADVERB}\s+wider"),
    "stare": r"star(?:e|es|ed|ing)",
    "slightly_open": alt(rf"{WS('slightly a_little a_bit a_little_bit little a_tiny_bit barely just partly partially half')}"
                         r"[- ]?(?:open(?:ed|s|ing)?|ajar)", r"ajar",
                         rf"{WS('somewhat faintly marginally minimally a_touch')}\s+open(?:ed)?"),
    "open": alt(V("open"), rf"{alt(V('drop!', 'fall', 'hang', 'swing'), 'fell', 'hung')}"
                           rf"{ADVERB}\s+(?:wide\s+)?(?:open|loose|slack)"),
    "half_close": r"half[- ]?(?:closed|shut|lidded)|hooded|heavy[- ]lidded",
    "squeeze_shut": alt(rf"{V('squeeze', 'screw', 'scrunch', 'crush')}{ADVERB}\s+(?:shut|closed)",
                        rf"{V('squeeze')}\s+tight(?:ly)?\s+(?:shut|closed)"),
    "screw_up": alt(rf"{V('screw', 'scrunch')}\s+up"),
    "screw": V("screw"),
    "close": alt(rf"(?:tightly\s+)?{V('close')}", r"closure", r"(?:tightly\s+)?shut(?:s|ting)?",
                 r"shut\s+tight(?:ly)?"),
    "blink": alt(V("blink"), r"mid-blink", r"half-?blink(?:s|ing)?"),
    "narrow": V("narrow"),
    "squint": alt(V("squint"), r"squinty"),
    "tighten": alt(V("tighten", "tense"), r"tight(?:er)?", r"tension", r"tenseness",
                   rf"{alt(V('pull', 'draw'), 'drawn')}\s+tight(?:ly)?"),
    "squeeze": V("squeeze"),
    "wrinkle": alt(rf"{V('wrinkle', 'crinkle')}(?:\s+up)?", r"wrinkly"),
    "curl": V("curl"),
    "pull": V("pull", "tug!"),
    "motion": alt(r"mov(?:e|es|ed|ing|ements?)", r"motions?", r"activity", r"actions?",
                  r"engagement", r"involvement", r"changes?"),   # named only to be denied
    "still": alt(r"still(?=\s*(?:[.,;:!?)\n]|$|\b(?:and|but|while|with|throughout|otherwise|as|"
                 r"except|apart|instead|rather|save|other)\b))", r"motionless", r"immobile", r"unmoving", r"unmoved",
                 r"static", r"stationary", r"silent", r"untouched",
                 r"quiet(?=\s*(?:[.,;:!?)\n]|$|\b(?:and|but|while|with|throughout|instead|rather)\b))",
                 r"(?:stay|stays|stayed|staying|remain|remains|remained|remaining)\s+put",
                 r"(?:(?<=:)|(?<=:\s))(?:none|nothing|nil)(?=\s*(?:[.,;|\n]|$))"),   # "Brows: none."
    # "unraised brows", "the nose remains unwrinkled": the movement denied by its own word
    "un_raise": r"un(?:raised|lifted|elevated)", "un_wrinkle": r"un(?:wrinkled|creased|crinkled)",
    "un_furrow": r"un(?:furrowed|knitted|knit|lowered)", "un_part": r"unparted",
    "un_tighten": r"un(?:tightened|tensed|narrowed)", "un_curl": r"uncurled",
    "un_stretch": r"unstretched", "un_dimple": r"undimpled",
    # "the lips stay closed", "the jaw stays shut": lips part / jaw drop denied
    "shut": alt(rf"(?:{V('stay', 'remain', 'keep', 'hold')}|kept|held)\s+(?:firmly\s+|fully\s+)?"
                r"(?:closed|shut|sealed|together)", r"sealed",
                r"together(?=\s*(?:[.,;:!?)\n]|$|\b(?:and|but|while|with)\b))"),
    "draw": alt(V("push", "draw", "bring", "move"), r"drawn|brought"),
    "side_noun": rf"{W('sideways', 'lateral', 'horizontal', 'outward')}\s+"
                 rf"{alt(V('stretch', 'pull', 'spread', 'tug!'), 'traction')}",
    "side": alt(rf"{alt(DIR, V('stretch', 'spread'))}(?:\s+out)?{ADVERB}\s+"
                rf"{_SIDE_WORDS}",
                rf"{alt(DIR, V('stretch'))}(?:\s+out)?\s+to\s+(?:the|both|either)\s+sides?",
                rf"{WS('sideways lateral horizontal outward backward')}\s+{_DIR_NOUN}"),
    "inward": alt(rf"{alt(DIR, V('tuck', 'suck', 'roll', 'press'))}{ADVERB}\s+"
                  rf"{W(_IN, 'inward', 'inwards', 'inside')}",
                  r"tuck(?:ed|s|ing)?"),
    "suck": V("suck"),
    "dimple": alt(V("dimple"), r"dimplers?"),
    "stretch": V("stretch"),
    "press": alt(r"pressors?", r"compressions?",
                 rf"{V('press', 'compress', 'clamp')}(?:{ADVERB}\s+"
                 rf"(?:{WS('together shut closed tight tightly firmly')}"
                 r"|in(?:to)?\s+an?\s+(?:\w+\s+)?line))?"),
    "thin": alt(r"thinned|thinning|thins",
                r"thin(?=\s*(?:[.,;:!)\n—–-]|$|\b(?:and|but|with|while|as)\b))"),   # "lips went thin"
    "part": alt(r"parts(?!\s+of)|parted|parting|part(?!\s+of)", rf"{DIR}{ADVERB}\s+apart",
                r"(?:wide|far|well|way)\s+apart", r"apart(?!\s+from)", V("separate"),
                r"separation", r"unsealed", r"(?:gap|space|opening|daylight)\s+between"),
    "pout": V("pout"),
    "bunch": V("bunch"),
    "bulge": V("bulge"),
    "disappear": alt(V("disappear", "vanish"), r"swallowed\s+up", r"out\s+of\s+sight"),
    "droop": alt(V("droop", "sag!"), r"droopy"),
    "pucker": alt(V("pucker", "purse", "funnel"), r"funnell(?:ed|ing)"),
    "puff": V("puff", "inflate", "balloon"),
    "flare": V("flare", "dilate"),
    "clench": alt(V("clench", "grit!", "grind", "gnash"), r"ground"),
    "bare": r"bared|baring|bares|exposed|exposing",
    "bite": r"bite|bit(?:es|ing|ten)",
    "head_turn": alt(V("tilt", "turn", "nod!", "shake", "jerk", "bow", "incline", "rotate",
                       "lean", "tip!", "avert", "divert"), r"shook|downcast|averted"),
    "twitch": V("twitch", "quiver", "tremble", "flutter", "spasm", "jut!", "thrust", "protrude",
                "lick", "roll"),
}
# a direction word after "pulls the lip corners ..." picks the movement
DIRECTIONS = {w: move for move, words in (
    ("up", "up upward upwards"), ("down", "down downward downwards"), ("together", "together"),
    ("side", "back backward sideways laterally outward horizontally"), ("part", "apart"),
    ("inward", "in inward inwards"), ("open", "open"), ("widen", "wide"), ("tighten", "tight"),
    ("close", "shut closed")) for w in words.split()}
VERB_DIRECTIONS = {("squeeze", "close"): "squeeze_shut", ("squeeze_shut", "close"): "squeeze_shut",
                   ("screw_up", "close"): "squeeze_shut", ("screw", "close"): "squeeze_shut",
                   ("screw", "up"): "screw_up", ("furrow", "up"): "screw_up"}
NON_AU_MOVES = frozenset({"pucker", "puff", "flare", "clench", "bare", "bite", "twitch",
                          "half_close"})
# moves that assert their AU only when denied: "no jaw movement" denies AU26 (the jaw's only
# AU among the 18), "the jaw moves" asserts nothing (it may thrust or slide, AU29/AU30)
DENY_ONLY_MOVES = frozenset({"motion"})

# move: part=AUs ...  ("-": a movement outside the 18 AUs; "0": asserts nothing; "*": any other
# part; "_": the move with no part beside it). A part missing from a move falls back to the
# broader part in PART_FALLBACK (a bare "corners" reads as lip corners).
_COMBOS = """
raise_inner: brows,inner_brows,forehead=01
raise_outer: brows,outer_brows=02
raise_inner_noun: brows,inner_brows,forehead,_=01
raise_outer_noun: brows,outer_brows,_=02
raise: inner_brows=01 outer_brows=02 brows,forehead=01+02 lids=05 lower_lids=07 cheeks=06
    upper_lip=10 lip_corners=12 lower_lip,chin=17
up: inner_brows=01 outer_brows=02 brows=01+02 lids=05 lower_lids=07 cheeks=06 lips=10
    lip_corners,mouth=12 lower_lip,chin=17
oblique: brows=01
retract: lids=05 lip_corners,lips=20
arch: brows=01+02 inner_brows=01 outer_brows=02 lip_corners,mouth=12
bulge_eyes: eyes=05
up_bare: inner_brows=01 outer_brows=02 brows=01+02 upper_lids=05 cheeks=06 upper_lip=10
    lip_corners=12 lower_lip,chin=17
down_bare: brows=04 lip_corners=15
round: eyes,lids=05
lower: brows=04 lip_corners=15 jaw=26 lower_lip,lids=-
down: brows=04 lip_corners,mouth,lips=15 jaw=26 lower_lip,eyes=-
drop: jaw=26 lip_corners=15 brows=04 lower_lip,lids=-
together: brows=04 lips=23
furrow: brows,forehead=04 nose=09 chin=17 lips=-
frown: mouth,lips,lip_corners=15 *,_=04
widen: eyes,lids=05 lips=20
wide_open: eyes,lids=05 mouth,lips=25+26 jaw=26
stare: eyes=05
open: mouth=25+26 lips=25 jaw=26 eyes=0
slightly_open: mouth,lips,jaw=25 eyes,lids=-
half_close: eyes,lids,_=-
squeeze_shut: eyes,lids=07+45
screw_up: eyes,lids=07 nose=09 *=-
screw: nose=09
close: eyes,lids=45 lips=!25 mouth=!25+26 jaw=!26
blink: *,_=45
narrow: eyes,lids=07 lips,mouth=23
squint: *,_=07
tighten: eyes,lids=07 lips,mouth=23 lip_corners=14 jaw=-
squeeze: eyes,lids=07 lips,mouth=23
wrinkle: nose=09 forehead=01+02 chin=17 eyes=06
curl: upper_lip,lips=10 lower_lip=-
pull: lip_corners=12
motion: brows,forehead=01+02+04 inner_brows=01 outer_brows=02 eyes,lids,upper_lids=05+07+45
    lower_lids=07 cheeks=06 nose=09 lips=10+12+14+15+20+23+25+28 upper_lip=10 lower_lip=0
    mouth=10+12+14+15+20+23+25+26+28 lip_corners=12+14+15 chin=17 jaw=26
    upper_face=01+02+04+05+06+07+45 lower_face=09+10+12+14+15+17+20+23+25+26+28
still: brows,forehead=!01+02+04 inner_brows=!01 outer_brows=!02 eyes,lids,upper_lids=!05+07+45
    lower_lids=!07 cheeks=!06 nose=!09 lips=!10+12+14+15+20+23+25+28 upper_lip=!10 lower_lip=0
    mouth=!10+12+14+15+20+23+25+26+28 lip_corners=!12+14+15 chin=!17 jaw=!26
    upper_face=!01+02+04+05+06+07+45 lower_face=!09+10+12+14+15+17+20+23+25+26+28
un_raise: inner_brows=!01 outer_brows=!02 brows,forehead=!01+02 upper_lids=!05 cheeks=!06
    upper_lip=!10 lip_corners=!12 chin=!17
un_wrinkle: nose=!09 forehead=!01+02 chin=!17
un_furrow: brows,forehead=!04 chin=!17
un_part: lips,mouth=!25
un_tighten: eyes,lids=!07 lips,mouth=!23
un_curl: upper_lip,lips=!10
un_stretch: lips,mouth,lip_corners=!20
un_dimple: *,_=!14
shut: lips=!25 mouth=!25+26 jaw=!26 eyes,lids=45
draw:
side: lip_corners,lips,mouth=20
side_noun: lip_corners,lips,mouth,_=20
inward: lip_corners=14 lips=28 cheeks=-
suck: lips=28 cheeks=-
dimple: chin=17 *,_=14
stretch: lips,mouth,lip_corners=20
press: lips,mouth=23
thin: lips=23
part: lips,mouth,teeth=25
pout: *,_=17
bunch: cheeks=06 brows=04 chin=17
disappear: lips=28
bulge: eyes=05 lower_lids=07 *=-
droop: lip_corners,mouth=15 jaw=26 *,_=-
pucker: chin=17 *,_=-
puff: *,_=-
flare: eyes=05 *,_=-
clench: eyes,lids=07 *,_=-
bare: teeth=-
bite: *=-
head_turn: head,gaze,eyes=-
twitch: *=-
"""
PART_FALLBACK = {"corners": "lip_corners", "inner_brows": "brows", "outer_brows": "brows",
                 "upper_lids": "lids", "lower_lids": "lids", "eye_corners": "eyes",
                 "upper_lip": "lips", "lower_lip": "lips"}


class Denied(tuple):
    """AUs a movement word denies by asserting it: "the mouth is still", "unraised brows",
    "the lips stay closed" ("!" in the table)."""


def _codes(codes: str):
    if codes == "-":
        return UNMAPPED
    if codes == "0":
        return NEUTRAL
    found = tuple(f"AU{c}" for c in codes.lstrip("!").split("+"))
    return Denied(found) if codes.startswith("!") else found


COMBOS: dict[str, dict] = {
    move: {("" if p == "_" else p): _codes(codes)
           for parts, codes in re.findall(r"([\w*,]+)=(!?[\d+-]+)", rest) for p in parts.split(",")}
    for move, rest in re.findall(r"^(\w+):(.*(?:\n    .*)*)", _COMBOS, re.MULTILINE)}


def combo(move: str, part: str | None, explicit: bool = False):
    """The AUs `move` asserts of `part` (UNMAPPED, NEUTRAL, or None: the pair says nothing);
    `explicit`: only a pair the table names (no "*" or non-AU fallback)."""
    table = COMBOS[move]
    if part is None:
        return table.get("")
    for p in (part, PART_FALLBACK.get(part)):
        if p in table:
            return table[p]
    if explicit:
        return None
    if part in NON_AU_PARTS:
        return UNMAPPED
    return table.get("*", UNMAPPED if move in NON_AU_MOVES else None)


ORBICULARIS_OCULI = r"(?:orbicularis|orb\.?)\s+oculi"   # "orb. oculi" in clinical notes
_ORBICULARIS = r"(?:orbicularis|orb\.?)"

# --- direct cues (no part needed) ---------------------------------------------------------------
_LINES = W("lines?", "wrinkles?", "creases?", "furrows?", "folds?")
_OF_THE = r"\s+(?:part|portion)\s+of\s+(?:the\s+)?"
CUES: list[tuple[str, tuple | str]] = [
    (alt(r"smil(?:ing|ey)\s+eyes", r"eyes\s+(?:that\s+)?smil(?:e|es|ed|ing)",
         r"laugh(?:ter)?\s+lines"), ("AU06",)),
    (rf"smile\s+(?:that\s+)?(?:reach(?:es|ed|ing)?|spread(?:s|ing)?\s+(?:up\s+)?to)\s+{DET}eyes",
     ("AU06", "AU12")),
    (alt(V("smile", "grin!", "beam"), r"smiley", r"half-smile", V("smirk")), ("AU12",)),
    (r"duchenne(?:\s+(?:smile|marker|display))?", ("AU06", "AU12")),
    (alt(V("sneer", "snarl")), ("AU10",)),
    (r"crow['’]?s[- ]?feet", ("AU06",)),
    (alt(r"wide-eyed", rf"whites?\s+of\s+{DET}eyes", r"scleral?(?:\s+show)?",
         r"whites?\s+(?:\w+\s+)?above\s+the\s+iris(?:es)?"), ("AU05",)),
    (r"open-mouthed", ("AU25", "AU26")),
    (r"slack-jawed", ("AU26",)),
    (alt(r"tight-lipped", r"thin-lipped",
         r"(?:set|pressed|drawn)\s+in(?:to)?\s+an?\s+(?:[\w-]+,?\s+){0,3}line"), ("AU23",)),
    (alt(rf"(?:vertical\s+)?{_LINES}\s+between\s+{DET}{BROW}", rf"glabellar\s+{_LINES}"),
     ("AU04",)),
    (alt(rf"(?:central|medial)\s+horizontal\s+(?:forehead\s+)?{_LINES}",
         rf"horizontal\s+{_LINES}\s+(?:\w+\s+)?(?:(?:in|across|at)\s+the\s+)?(?:middle|centre|center|"
         r"mid-?forehead)"), ("AU01",)),
    (r"\bknit(?=\s+between|\s*[,.;:)]|$)", ("AU04",)),        # "a faint knit between them"
    (rf"head\s+(?:\w+\s+){{0,2}}back,?\s+(?:with\s+)?(?:{DET})?chin\s+(?:up|raised|lifted|high)",
     UNMAPPED),                     # "head tipped back, chin up": the head's posture
    (alt(rf"horizontal\s+(?:forehead\s+)?{_LINES}", rf"forehead\s+{W('lines?', 'creases?')}"),
     ("AU01", "AU02")),
    (r"whites?\s+(?:of\s+(?:the|her|his)\s+eyes?\s+)?(?:shows?|showing|visible)\s+(?:above|over|around)",
     ("AU05",)),
    (rf"wrinkles?\s+{W('along', 'on', 'at', 'across', 'over')}\s+{DET}"
     rf"{W('sides?', 'bridge', 'root')}\s+of\s+{DET}nose", ("AU09",)),
    (r"orange[- ]peel", ("AU17",)),
    (r"bunny\s+lines", ("AU09",)),
    (r"narrow\s+slits?|slit[- ]like|slitted", UNMAPPED),      # "the eyes are narrow slits": AU42
    (alt(rf"{V('lift', 'raise', 'tilt', 'tip!', 'jut!', 'stick')}\s+(?:up\s+)?(?:his|her|their|one's)\s+chin",
         rf"chin\s+{alt(V('tip!', 'tilt', 'jut!'), 'thrust')}\s+(?:up|upward|forward)"), UNMAPPED),                     # "he lifted his chin": the head, not the chin raiser
    (alt(r"(?:eye|gaze)\s+(?:movements?|shifts?|darts?)",
         r"eyes?\s+(?:do(?:es)?\s+not|don['’]t|doesn['’]t|never)\s+(?:move|wander|dart|shift)"),
     UNMAPPED),                     # gaze, not the lids: "no eye movement" denies no AU
    (alt(r"lip\s+puckers?", r"lip\s+funnell?ers?", r"lip\s+pressors?", r"mouth\s+stretch",
         r"jaw\s+thrust", r"jaw\s+sideways", r"jaw\s+clench(?:er)?", r"nostril\s+(?:dilator|compressor)",
         r"cheek\s+(?:puff(?:er)?|blow|suck)", r"lid\s+droop", r"nasolabial\s+(?:fold\s+)?deepener",
         r"sharp\s+lip\s+puller", r"lower\s+lip\s+depressor", r"tongue\s+show", r"neck\s+tightener",
         r"lip\s+bite"), UNMAPPED),     # FACS names of AUs outside the 18
    (alt(V("grimace", "wince", "yawn"), r"eye[- ]?rolls?", r"lip[- ]bit(?:e|ing)",
         r"(?:visible|showing|exposed)\s+teeth", r"teeth\s+(?:are\s+)?(?:visible|showing|exposed)",
         r"tongue\s+(?:is\s+)?(?:out|showing|visible)"), UNMAPPED),
]
# muscles: cues too, but a muscle described at rest asserts nothing (guideline rule 6)
MUSCLES: list[tuple[str, tuple | str]] = [
    (alt(r"frontalis\s+(?:pars\s+)?medialis", r"medial\s+frontalis",
         r"frontalis[,\s]+(?:its\s+)?medial\s+(?:fibres|fibers|bell(?:y|ies)|portions?|parts?|heads?)",
         rf"{W('medial', 'inner')}\s+{SEG}\s+of\s+(?:the\s+)?frontalis"), ("AU01",)),
    (alt(r"frontalis\s+(?:pars\s+)?lateralis", r"lateral\s+frontalis",
         r"frontalis[,\s]+(?:its\s+)?lateral\s+(?:fibres|fibers|bell(?:y|ies)|portions?|parts?|heads?)",
         rf"{W('lateral', 'outer')}\s+{SEG}\s+of\s+(?:the\s+)?frontalis"), ("AU02",)),
    (r"frontalis", ("AU01", "AU02")),
    (alt(r"corrugators?(?:\s+supercilii)?", r"depressor\s+supercilii", r"procerus"), ("AU04",)),
    (r"levator\s+palpebrae(?:\s+superioris)?", ("AU05",)),
    (alt(rf"{ORBICULARIS_OCULI}\s+(?:pars\s+)?orbitalis", r"pars\s+orbitalis",
         rf"orbital{_OF_THE}{_ORBICULARIS}(?:\s+oculi)?", rf"orbital\s+{_ORBICULARIS}(?:\s+oculi)?"),
     ("AU06",)),
    (alt(rf"{ORBICULARIS_OCULI}\s+(?:pars\s+)?palpebralis", r"pars\s+palpebralis",
         rf"palpebral{_OF_THE}{_ORBICULARIS}(?:\s+oculi)?",
         rf"(?:palpebral|pretarsal|preseptal)\s+{_ORBICULARIS}(?:\s+oculi)?"), ("AU07",)),
    (ORBICULARIS_OCULI, ("AU06",)),     # the reader makes it AU07 when tied to lid tightening
    (alt(r"levator\s+labii\s+superioris\s+alaeque\s+nasi", r"llsan"), ("AU09",)),
    (alt(r"levator\s+labii(?:\s+superioris)?", r"lls"), ("AU10",)),
    (alt(r"zygomatic(?:us)?\s+major", r"zygomaticus(?!\s+minor)", r"zm",
         r"(?<!lesser\s)(?<!minor\s)zygomatic(?!\s+(?:minor|arch|bone|process|region|area))"),
     ("AU12",)),
    (r"buccinator", ("AU14",)),
    (alt(r"depressor\s+anguli\s+oris", r"triangularis", r"dao"), ("AU15",)),
    (r"mentalis", ("AU17",)),
    (alt(r"risorius", r"platysma(?=(?:\W+\w+){0,6}?\W+stretch)"), ("AU20",)),
    (rf"{_ORBICULARIS}\s+oris", ("AU23",)),
    # muscles of other AUs
    (alt(r"zygomatic(?:us)?\s+minor", r"levator\s+anguli\s+oris", r"incisivi\w*", r"nasalis",
         r"depressor\s+labii(?:\s+inferioris)?", r"platysma", r"caninus"), UNMAPPED),
]
# a muscle at rest: "relaxation of the zygomaticus", "a relaxed orbicularis oris" (REST_BEFORE,
# with determiners and "of" between); "the frontalis is inactive / at rest / relaxes / is not
# active" (REST_AFTER, with link verbs and adverbs between)
REST_BEFORE = frozenset("relaxed relaxing relaxation resting inactive inactivity quiescent "
                        "neutral idle dormant disengaged lax release released releasing".split())
REST_AFTER = REST_BEFORE | frozenset("relaxes relax rest inert silent quiet nil flat off zero".split())
REST_STATE = frozenset("active activated engaged contracted contracting contracts contract "
                       "firing recruited involved".split())   # after "not": "is not active"


LEXICON = ([(*compiled(p), "part", name, None) for name, p in PARTS.items()]
           + [(*compiled(p), "move", name, None) for name, p in MOVES.items()]
           + [(*compiled(p), "cue", p, codes) for p, codes in CUES]
           + [(*compiled(p), "muscle", p, codes) for p, codes in MUSCLES])
