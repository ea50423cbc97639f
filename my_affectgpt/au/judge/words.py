"""The AU judge's words about words: intensity (FACS bands), negation and its scope, and the token
classes that say which words may stand between a part and its movement, a band and its mention,
the items of a negated list. Written from the annotation guideline, like vocab.py."""
from __future__ import annotations

from .patterns import W, alt, compiled


# --- intensity --------------------------------------------------------------------------------
def _words(text: str) -> tuple:
    return tuple(w.replace("_", " ") for w in text.split())


BAND_TERMS = {   # the judge's own table, from the guideline ("_" joins a multi-word term)
    "trace": _words("trace traces faint faintly faintest barely barest barely_perceptible barely_visible "
                    "barely_noticeable hint hints hint_of minimal minimally subtle subtly minute "
                    "just_perceptible just_visible just_noticeable touch_of a_touch tiny "
                    "flicker_of ghost_of whisper_of slightest subtlest tiniest a_tiny_bit tiny_bit "
                    "the_barest_bit a_shade a_hair a_smidge a_smidgen a_fraction teeny teeny_bit a_teeny_bit "
                    "the_slightest_bit the_tiniest_bit the_teeniest_bit the_smallest_bit a_sliver "
                    "by_a_breath by_a_hair by_a_whisker a_whisker littlest the_littlest_bit "
                    "the_smallest_degree hardly"),
    "slight": _words("slight slightly mild mildly light lightly gentle gently weak weakly small "
                     "a_little a_bit somewhat modest modestly low soft softly mildest lightest "
                     "gentlest weakest a_tad a_lil a_lil_bit lil little a_little_bit"),
    "marked": _words("marked markedly pronounced moderate moderately noticeable noticeably notable "
                     "notably clear "
                     "clearly evident evidently distinct distinctly medium definite definitely "
                     "obvious obviously fairly"),
    "severe": _words("severe severely extreme extremely strong strongly intense intensely "
                     "considerable considerably substantial substantially significant "
                     "significantly heavy heavily deep deeply high highly large hard"),
    "maximum": _words("maximum maximal maximally full fully utmost as_far_as_it_goes "
                      "at_its_peak at_peak completely as_far_as_possible as_wide_as_possible "
                      "strongest deepest fullest max"),
}
# "very slight" -> trace, "very pronounced" -> severe, "very strong" -> maximum
VERY_SHIFT = {"trace": "trace", "slight": "trace", "marked": "severe", "severe": "maximum",
              "maximum": "maximum"}
# "fairly strong", "pretty hard": a hedge on a band word keeps that word's band
BAND_REGEXES = [(rf"(?:fairly|quite|pretty|rather)\s+{W(*(w for w in words if ' ' not in w))}", band)
                for band, words in BAND_TERMS.items()] + [pair for band, words in BAND_TERMS.items() for pair in (
    (W(*(w.replace(" ", r"\s+") for w in words)), band),
    (rf"(?:very|extremely|exceptionally|really|incredibly|ever\s+so)\s+{W(*(w for w in words if ' ' not in w))}",
     VERY_SHIFT[band]))] + [
    # everyday limits: "as high as they'd go", "as wide as eyes can go", "as far as a face
    # allows", "to their very limit", "all the way"
    (r"as\s+\w+(?:\s+apart)?\s+as\s+(?:[\w'’]+\s+){0,3}?(?:go|goes|get|gets|allows?|possible"
     r"|(?:could|can|would|will)(?=[\s.,;]))", "maximum"),
    (r"to\s+(?:the|their|its|his|her)\s+(?:very\s+)?(?:limit|max|maximum|end\s+of\s+"
     r"(?:their|its|the)\s+reach)", "maximum"),
    (r"all\s+the\s+way", "maximum")]

# --- negation and scope -----------------------------------------------------------------------
NEG_PREFIX = alt(
    r"no", r"not", r"never", r"without", r"nor", r"neither", r"none(?:\s+of)?", r"nothing",
    r"lack(?:s|ed|ing)?(?:\s+(?:of|in))?", r"absence\s+of", r"free\s+(?:of|from)",
    r"devoid\s+of", r"fail(?:s|ed)?\s+to", r"rather\s+than", r"instead\s+of", r"cannot",
    r"neg(?:ative)?(?=\s*:)", r"checked\s+(?:\w+\s+)?for", r"looked\s+for",
    r"\w+n['’]t", r"(?:is|are|was|were|do|does|did|has|have|had|ca|wo|could|would)nt",
    rf"{W('no', 'not', 'without', 'nor', 'never')}\s+(?:a\s+|any\s+|the\s+(?:slightest|least)\s+)?"
    rf"(?:\w+\s+)?{W('signs?', 'traces?', 'hints?', 'evidence', 'indications?', 'suggestions?')}"
    rf"\s+of")
NEG_INERT = alt(r"no\s+other", r"nothing\s+else", r"none\s+other", r"not\s+only", r"not\s+just",
                r"not\s+least", r"no\s+(?:more|less)\s+than", r"(?:no|without)\s+doubt",
                r"whether\s+or\s+not", r"if\s+not", r"not\s+un\w+",
                r"(?:almost|nearly|next\s+to|virtually)\s+nothing", r"nothing\s+much")
_STATE_NEG = W(*_words("present visible active activated evident apparent observed observable "
                       "seen detected detectable noticeable discernible engaged involved shown "
                       "there perceptible recruited noted at_play in_evidence identifiable "
                       "indicated"))
_COPULA = alt(W("is", "are", "was", "were", "remains?", "appears?", "seems?", "stays?"),
              rf"{W('has', 'have', 'had')}\s+been", rf"{W('appears?', 'seems?')}\s+to\s+be")
_DEGREE = W(*_words("completely entirely totally wholly fully also clearly likewise notably all "
                    "both each equally"))
_CODED = W("coded", "scored", "rated", "marked")
_DENIED = W('absent', 'missing', 'inactive', 'lacking', 'gone', 'nonexistent', 'non-existent',
            'not ' + _STATE_NEG, 'not at all', 'nowhere to be seen', 'nowhere to be found',
            'not to be seen', 'ruled out', 'rejected', 'checked and rejected', 'excluded')
NEG_POSTFIX = alt(
    rf"(?:{_COPULA}\s+)?(?:{_DEGREE}\s+)?{_DENIED}",
    rf"(?:{_COPULA}\s+)?{_CODED}\s+(?:as\s+)?{W('absent', 'zero', '0', 'none', 'nil', 'not present')}",
    rf"(?:{_COPULA}\s+)?not\s+{W('scored', 'coded')}",
    rf"{W('does', 'do', 'did')}\s+not\s+{W('occur', 'happen', 'appear', 'show')}",
    rf"{W('is', 'are', 'was', 'were', 'does', 'do')}\s+not(?=\s*(?:[.;,!)]|$))",
    rf"{W('isn', 'aren', 'wasn', 'weren')}['’]t(?=\s*(?:[.;,!)]|$))",
    # detector outputs: "stayed below threshold", "both read zero"
    rf"(?:{_COPULA}\s+|{W('stayed', 'stays', 'remained', 'fell', 'falls')}\s+)?{W('below', 'under')}\s+"
    rf"(?:the\s+)?(?:presence\s+|detection\s+)?threshold",
    rf"(?:{W('both', 'all', 'each')}\s+)?{W('read', 'reads', 'score', 'scores', 'scored')}\s+(?:at\s+)?"
    rf"(?:zero|0(?:\.0+)?)(?![.\d])")
CONTRAST = alt(*_words("but while whilst whereas although though yet however except excepting "
                       "besides apart_from other_than instead rather save_for unlike only albeit "
                       "beyond in_contrast on_the_other_hand nevertheless nonetheless with"))

HEDGES = frozenset("possibly perhaps maybe probably approaching nearly almost bordering on".split())

# --- token classes: which words may stand between a part and its movement, a band and its
# mention, the items of a negated list, ...
def _set(text: str) -> frozenset:
    return frozenset(text.split())


DETERMINERS = _set("a an the her his their its both each either any some this that these those "
                   "my your our one")
LINK_VERBS = _set("is are was were be been being am r appear appears appeared seem seems seemed "
                  "getting becoming "
                  "look looks looked remain remains remained stay stays become becomes became "
                  "get gets got show shows showed shown showing display displays exhibit "
                  "exhibits has have had having can could may might will would to does do did "
                  "begin begins start starts went gone goes go grew grown")
ADVERBS = _set("also now still then just only further both somewhat quite rather very more less "
               "even too again almost nearly partly partially ever so pretty really kind sort "
               "maybe perhaps possibly probably apparently seemingly nevertheless nonetheless "
               "however though kinda sorta lowkey super totally literally like way uh um hmm er erm")
NOT_FORMS = frozenset(w + end for w in _set("is are was were does do did has have had ca wo could "
                                           "would") for end in ("n't", "nt"))
COORDINATORS = _set(", and or nor & / as well")
STATE_WORDS = _set("relaxed neutral still at rest calm smooth soft loose steady unchanged level "
                   "straight flat symmetrical symmetric even together closed shut sealed")
SUBJECTS = _set("she he they it there this we i you")
PRONOUNS = _set("they it both these those which")
_MUSCLE_ACTION = _set("contraction activation activity action engagement involvement recruitment")
# words about the description or a change, not a level: no band (guideline, "Intensity bands")
DESCRIPTIVE = _set("consistent coordinated sustained visible present engaged intensified "
                   "heightened increased enhanced extensive balanced persistent continued")
PRE_FILLER = _MUSCLE_ACTION | DESCRIPTIVE | _set(
    ", - but yet of the visible visibly bilateral bilaterally symmetrical symmetric asymmetric "
    "asymmetrical unilateral degree amount level intensity sign signs brief sustained partial "
    "simultaneous accompanying concurrent corresponding associated apparent observable "
    "detectable perceptible discernible consistent coordinated present active engaged upward "
    "downward")
POST_FILLER = _MUSCLE_ACTION | _set("| the "
    "is are was were appears appear seems seem looks remains to be at with of a an in ( ) : - – "
    "= , intensity level degree strength amplitude magnitude grade so that which quite fairly "
    "but visible present active engaged only")
NUM_FILLER = POST_FILLER | _set("score scored value rated estimated about approximately around "
                                "roughly ~ ≈ r measured reading")
RIGHT_FILLER = DETERMINERS | _set("of in at on around across to along near by about bilateral "
                                  "symmetrical symmetric visible between over")
# verbs that carry no movement of their own: "the eyes are held shut", "the lips had come apart"
LIGHT_VERBS = _set("held hold holds kept keep keeps flung thrown caught left come came coming "
                   "gone become grown set sit sits sat fall falls fell fallen rest rests")
LEFT_FILLER = LINK_VERBS | ADVERBS | DETERMINERS | NOT_FORMS | DESCRIPTIVE | LIGHT_VERBS | _set(
    "not no neither never in into being cannot : - – of themselves itself * ** , | \" '")
LOCATIVE = _set("over between behind against into")   # "sucked in over the teeth": a place
LIST_SEP = COORDINATORS | DETERMINERS | _set("nor neither")
ORPHAN_COORD = _set(", and or nor but not yet then than of with along while whilst though although / |")
ORPHAN_OK = (COORDINATORS | LINK_VERBS | ADVERBS | STATE_WORDS | NOT_FORMS | ORPHAN_COORD
             | _set("no rest rather instead degree extent force maximum remaining staying region area resting "
                    "zone there"))
POSTFIX_GAP = _set(": ( ) , - – = is are \" '")
BAND_JOIN = _set("but yet and -")


# --- compiled tables ------------------------------------------------------------------------------
# on equal length a postfix negation beats an inert phrase beats a prefix beats a contrast
SCOPES = [(*compiled(p), kind, rank, None) for rank, (p, kind) in enumerate(
    ((NEG_POSTFIX, "post"), (NEG_INERT, "inert"), (NEG_PREFIX, "neg"), (CONTRAST, "contrast")))]
BANDS = [(*compiled(p), "band", band, None) for p, band in BAND_REGEXES]


