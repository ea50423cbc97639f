"""AU states for the judge's fresh gold sets, fixed before any text is written.

    python tests/data/make_gold_states.py --set 2    # 8 writers (4 kinds x a, b), 45 states each
    python tests/data/make_gold_states.py --set 3    # writers c, d, 20 states each
    python tests/data/make_gold_states.py --set 4    # writers e, f, 20 states each
    python tests/data/make_gold_states.py --set 5    # writers g, h, 20 states each
    python tests/data/make_gold_states.py --set 6    # writers i, j, 20 states each

Per writer: distractors (no AU of the 18 active), dense states (8-14 active), regular ones (1-7
active, EMFACS-like co-occurrence or random); 45 states = 5 + 7 + 33, 20 = 2 + 4 + 14.
Each state: active AUs with a FACS intensity letter (AU28: presence only), AUs the text
must explicitly deny, and movements outside OpenFace's 18 AUs the text must mention.
"""
import json
import random

CODES = ["AU01","AU02","AU04","AU05","AU06","AU07","AU09","AU10","AU12","AU14","AU15",
         "AU17","AU20","AU23","AU25","AU26","AU28","AU45"]
PROTOS = [["AU06","AU12"],["AU06","AU12","AU25"],["AU01","AU04","AU15"],["AU01","AU04","AU15","AU17"],
          ["AU01","AU02","AU05","AU26","AU25"],["AU01","AU02","AU04","AU05","AU07","AU20","AU26"],
          ["AU04","AU05","AU07","AU23"],["AU09","AU15","AU10"],["AU09","AU10","AU17"],["AU12","AU14"],
          ["AU14"],["AU04","AU07"],["AU17","AU23"],["AU25","AU26"],["AU45"],["AU28","AU17"],
          ["AU01","AU02"],["AU20","AU25"],["AU10","AU25","AU26"],["AU06","AU07","AU12","AU25","AU26"]]
OTHER = ["AU11 nasolabial deepener","AU13 sharp lip puller (cheek puffer)","AU16 lower lip depressor",
         "AU18 lip pucker","AU19 tongue show","AU21 neck tightener","AU22 lip funneler",
         "AU24 lip pressor","AU27 mouth stretch","AU29 jaw thrust","AU30 jaw sideways",
         "AU31 jaw clencher","AU32 lip bite","AU33 cheek blow","AU34 cheek puff","AU35 cheek suck",
         "AU38 nostril dilator","AU39 nostril compressor","AU41 lid droop","AU42 slit (eyes)",
         "AU43 eyes closed (held, not a blink)","AU44 squint (FACS 44)","AU51 head turn left","AU53 head up",
         "AU54 head down","AU55 head tilt left","AU61 eyes turn left","AU64 eyes down"]
LETTERS = "ABCDE"
KINDS = ["facs_coder", "lay", "clinical", "llm_prose"]

def letter(rng):
    return rng.choices(LETTERS, weights=[30, 30, 20, 12, 8])[0]

def state(rng, kind):
    if kind == "distractor":
        active = []
    elif kind == "dense":
        active = rng.sample(CODES, rng.randint(8, 14))
    else:
        if rng.random() < 0.6:
            active = list(rng.choice(PROTOS))
            if rng.random() < 0.4:
                active.append(rng.choice(CODES))
            # drop one sometimes
            if len(active) > 2 and rng.random() < 0.3:
                active.remove(rng.choice(active))
        else:
            active = rng.sample(CODES, rng.randint(1, 7))
    active = sorted(set(active))
    act = {c: (None if c == "AU28" else letter(rng)) for c in active}
    rest = [c for c in CODES if c not in act]
    negation_heavy = kind != "dense" and rng.random() < 0.22
    if negation_heavy:
        deny = rng.sample(rest, min(len(rest), rng.randint(3, 7)))
    elif rng.random() < 0.35 or kind == "distractor":
        deny = rng.sample(rest, min(len(rest), rng.randint(1, 3)))
    else:
        deny = []
    other = rng.sample(OTHER, rng.randint(1, 2)) if (rng.random() < 0.2 or kind == "distractor" and rng.random() < 0.6) else []
    return {"active": act, "deny": sorted(deny), "other": other,
            "kind": kind, "negation_heavy": negation_heavy}

# set: (seed, writer letters, distractor / dense / regular states per writer)
SETS = {2: (20261207, "ab", (5, 7, 33)), 3: (20261208, "cd", (2, 4, 14)), 4: (20261209, "ef", (2, 4, 14)),
        5: (20261210, "gh", (2, 4, 14)),
        6: (20261211, "ij", (2, 4, 14))}


def main(argv=None):
    """Writes states_<kind>_<writer>.jsonl into the current directory."""
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--set", type=int, choices=sorted(SETS), required=True)
    gold = p.parse_args(argv).set
    seed, writers, (n_distractor, n_dense, n_regular) = SETS[gold]
    rng = random.Random(seed)
    for k in KINDS:
        for agent in writers:
            kinds = ["distractor"] * n_distractor + ["dense"] * n_dense + ["regular"] * n_regular
            rng.shuffle(kinds)
            with open(f"states_{k}_{agent}.jsonl", "w") as f:
                for i, sk in enumerate(kinds):
                    s = {"id": f"g{gold}-{k}-{agent}-{i:03d}", **state(rng, sk)}
                    f.write(json.dumps(s) + "\n")


if __name__ == "__main__":
    main()
