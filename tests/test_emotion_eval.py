"""Emotion evaluation: label normalisation and extraction, metrics against a hand count, the
prediction / ground-truth files, the LLM extractor (local HTTP endpoint, tiny local model) and
the evaluation.py CLI."""
from __future__ import annotations

import csv
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from conftest import run_cli
from my_affectgpt.au.facs import EMOTION_PROTOTYPES, EMOTION_WORDS
from my_affectgpt.common.errors import InputError
from my_affectgpt.evaluation.emotion_eval import (evaluate, load_ground_truth, load_predictions,
                                                  load_wheels, write_predictions)
from my_affectgpt.evaluation.emotion_labels import (basic_emotion, labels_from_list,
                                                    normalize_label, polarity, surface_table)
from my_affectgpt.evaluation.emotion_metrics import (hit_rate, predicted_sentiment, read_wheel,
                                                     sentiment_scores, set_scores)
from my_affectgpt.evaluation.label_extractors import (ChatEndpoint, EndpointError,
                                                      LexiconExtractor, LLMExtractor,
                                                      parse_llm_labels)

# ---- the fixture: 7 ground-truth videos, 6 predictions (s6 missing, one extra) ----------------
#
# name  generated text                                   lexicon labels
# s1    smiles broadly; she is joyful and excited        {happy, excited}
# s2    not happy at all; ... he is irritated            {angry}            ("not happy" negated)
# s3    "sad, worried"  (a label list)                   {sad, worried}
# s4    looks astonished, and a little scared            {surprised, fearful}
# s5    tone is calm and composed                        {calm}   ("composed" is not read in free text)
# s6    -- no prediction --                              {}
# s7    no trace of emotion in his face                  {}
PREDICTIONS = {
    "s1": "The woman smiles broadly; she is joyful and excited about the news.",
    "s2": "He is not happy at all; his frown shows he is irritated.",
    "s3": "sad, worried",
    "s4": "She looks astonished, and a little scared.",
    "s5": "The speaker's tone is calm and composed.",
    "s7": "There is no trace of emotion in his face.",
    "extra": "happy",  # not in the ground truth: ignored
}
GT_ROWS = [  # name, openset, emotion, sentiment
    ("s1", "happy, excited, grateful", "happy", "positive"),
    ("s2", "['angry', 'disappointed']", "anger", "negative"),
    ("s3", "sadness", "sad", "negative"),
    ("s4", "surprise", "surprise", "positive"),
    ("s5", "neutral", "neutral", "neutral"),
    ("s6", "happy", "happy", "positive"),
    ("s7", "angry", "angry", "-2"),  # a number: its sign gives the sentiment
]
EXPECTED_LABELS = {"s1": ["happy", "excited"], "s2": ["angry"], "s3": ["sad", "worried"],
                   "s4": ["surprised", "fearful"], "s5": ["calm"], "s6": [], "s7": []}

# Hit rate: the ground-truth basic emotion among the predicted labels or their basic emotions.
#   s1 happy in {happy, excited}            1
#   s2 anger -> angry in {angry}            1
#   s3 sad in {sad, worried}                1
#   s4 surprise in basics of {surprised}    1
#   s5 neutral = basic of calm              1
#   s6 no prediction                        0
#   s7 nothing extracted                    0      -> 5/7
HIT_RATE = 0.7142857142857143
# Set metrics on canonical labels, per sample (P_i = |G∩Y|/|Y|, R_i = |G∩Y|/|G|):
#   s1 G={happy,excited,grateful} Y={happy,excited}   P 2/2  R 2/3
#   s2 G={angry,disappointed}     Y={angry}           P 1/1  R 1/2
#   s3 G={sad}                    Y={sad,worried}     P 1/2  R 1/1
#   s4 G={surprised}              Y={surprised,fearful} P 1/2 R 1/1
#   s5 G={neutral}                Y={calm}            P 0    R 0
#   s6 G={happy}                  Y={}                P 0    R 0
#   s7 G={angry}                  Y={}                P 0    R 0
#   P = 3/7 = 0.428571..., R = (2/3 + 1/2 + 2)/7 = 19/42 = 0.452380...
#   F1 = 2PR/(P+R) = 114/259 = 0.440154...
OPEN_P, OPEN_R, OPEN_F1 = 0.42857142857142855, 0.4523809523809524, 0.44015444015444016
# Sentiment (s5 neutral left out, N = 6); predicted = majority polarity of the labels:
#   s1 pos -> pos ok   s2 neg -> neg ok   s3 neg -> neg ok   s4 pos -> neg (fearful) wrong
#   s6 pos -> neutral (no labels) wrong   s7 neg -> neutral wrong
#   positive: TP 1, FN 2 (s4, s6), FP 0       F1 = 2/(2+0+2) = 1/2,   support 3
#   negative: TP 2, FN 1 (s7),    FP 1 (s4)   F1 = 4/(4+1+1) = 2/3,   support 3
#   weighted F1 = 3/6 * 1/2 + 3/6 * 2/3 = 7/12; accuracy = 3/6
SENT_WF1, SENT_ACC = 0.5833333333333334, 0.5

# Wheel A (JSON word -> group). "fearful" is found through its synonym "scared", "surprised"
# through "surprise". Grouped sets:
#   s1 {joy}/{joy} P1 R1; s2 {anger,sadness}/{anger} P1 R1/2; s3 {sadness}/{sadness,fear} P1/2 R1
#   s4 {surprise}/{surprise,fear} P1/2 R1; s5 {neutral}/{neutral} P1 R1; s6, s7 P0 R0
#   P = 4/7, R = 4.5/7 = 9/14, F1 = 2PR/(P+R) = 72/119
WHEEL_A = {"happy": "joy", "excited": "joy", "grateful": "joy", "angry": "anger",
           "disappointed": "sadness", "sad": "sadness", "worried": "fear", "scared": "fear",
           "surprise": "surprise", "neutral": "neutral", "calm": "neutral"}
WHEEL_A_P, WHEEL_A_R, WHEEL_A_F1 = 0.5714285714285714, 0.6428571428571429, 0.6050420168067226
# Wheel B (CSV level1,level2,level3 at level1): positive / negative / neutral.
#   s1 {positive}/{positive} 1,1; s2 {negative}/{negative} 1,1; s3 {negative}/{negative} 1,1
#   s4 {neutral}/{neutral (surprise), negative (scared)} P1/2 R1; s5 {neutral}/{neutral} 1,1
#   s6, s7 0,0  ->  P = 4.5/7 = 9/14, R = 5/7, F1 = 90/133
WHEEL_B_CSV = """level1,level2,level3
positive,joy,happy
,,excited
,gratitude,grateful
negative,anger,angry
,sadness,sad
,,disappointed
,fear,worried
,,scared
neutral,calm,neutral
,surprise,surprise
"""
WHEEL_B_P, WHEEL_B_R, WHEEL_B_F1 = 0.6428571428571429, 0.7142857142857143, 0.6766917293233082
# Mean over the two wheels: P = (4/7 + 9/14)/2 = 17/28, R = (9/14 + 5/7)/2 = 19/28,
# F1 = (72/119 + 90/133)/2
WHEEL_MEAN = (0.6071428571428571, 0.6785714285714286, (72 / 119 + 90 / 133) / 2)


def write_gt(path, rows=GT_ROWS, header=("name", "openset", "emotion", "sentiment")):
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def files(tmp_path):
    npz, jsonl = tmp_path / "ckpt.npz", tmp_path / "ckpt.jsonl"
    write_predictions(PREDICTIONS, npz, jsonl)
    gt = write_gt(tmp_path / "labels.csv")
    wheel_a = tmp_path / "wheel_a.json"
    wheel_a.write_text(json.dumps(WHEEL_A), encoding="utf-8")
    wheel_b = tmp_path / "wheel_b.csv"
    wheel_b.write_text(WHEEL_B_CSV, encoding="utf-8")
    return {"npz": npz, "jsonl": jsonl, "gt": gt, "wheels": [wheel_a, wheel_b]}


def check_fixture_report(report):
    assert report["labels"] == EXPECTED_LABELS
    assert report["counts"] == {"ground_truth": 7, "predictions": 7, "evaluated": 6,
                                "missing_predictions": 1, "extra_predictions": 1}
    assert report["hit_rate"] == {"hit_rate": pytest.approx(HIT_RATE), "hits": 5, "n": 7}
    o = report["openset"]
    assert (o["precision"], o["recall"], o["f1"], o["n"]) == (
        pytest.approx(OPEN_P), pytest.approx(OPEN_R), pytest.approx(OPEN_F1), 7)
    s = report["sentiment"]
    assert (s["weighted_f1"], s["accuracy"], s["n"]) == (
        pytest.approx(SENT_WF1), pytest.approx(SENT_ACC), 6)
    a, b = report["wheels"]["wheel_a"], report["wheels"]["wheel_b"]
    assert (a["precision"], a["recall"], a["f1"]) == pytest.approx((WHEEL_A_P, WHEEL_A_R,
                                                                    WHEEL_A_F1))
    assert (b["precision"], b["recall"], b["f1"]) == pytest.approx((WHEEL_B_P, WHEEL_B_R,
                                                                    WHEEL_B_F1))
    m = report["wheel_mean"]
    assert (m["precision"], m["recall"], m["f1"]) == pytest.approx(WHEEL_MEAN)


def test_fixture_metrics_equal_the_hand_count(files):
    report = evaluate(load_predictions(files["npz"]), load_ground_truth(files["gt"]),
                      LexiconExtractor(), wheels=load_wheels(files["wheels"]))
    check_fixture_report(report)


# ---- metrics on label sets directly -----------------------------------------------------------

def test_set_scores_skip_empty_ground_truth_and_score_missing_predictions_as_empty():
    gt = {"a": ["happy", "sad"], "b": [], "c": ["angry"]}
    pred = {"a": ["joyful"], "b": ["angry"]}  # c missing
    # a: G={happy,sad} Y={happy} P 1 R 1/2; b skipped (empty G); c: Y={} P 0 R 0
    # P = 1/2, R = 1/4, F1 = 2*(1/8)/(3/4) = 1/3
    s = set_scores(gt, pred)
    assert (s["precision"], s["recall"], s["f1"], s["n"]) == pytest.approx((0.5, 0.25, 1 / 3, 2))


def test_hit_rate_through_basic_emotions():
    gt = {"a": "happiness", "b": "fear", "c": "worried", "d": "contempt"}
    pred = {"a": ["delighted"], "b": ["anxious"], "c": ["nervous"], "d": ["disdainful", "sad"]}
    # a delighted->happy hit; b anxious->worried, not fear; c nervous->worried hit; d hit -> 3/4
    assert hit_rate(gt, pred) == {"hit_rate": 0.75, "hits": 3, "n": 4}


def test_sentiment_weighted_f1_by_hand():
    gt = {"a": "positive", "b": "positive", "c": "negative", "d": "neutral"}
    pred = {"a": "positive", "b": "negative", "c": "negative", "d": "positive"}
    # d left out (neutral truth). positive: TP1 FN1 FP0 -> 2/3, support 2
    # negative: TP1 FN0 FP1 -> 2/3, support 1; weighted = 2/3; accuracy 2/3
    s = sentiment_scores(gt, pred)
    assert (s["weighted_f1"], s["accuracy"], s["n"]) == pytest.approx((2 / 3, 2 / 3, 3))


@pytest.mark.parametrize("labels, expected", [
    (["happy", "excited"], "positive"),
    (["worried", "happy", "sad"], "negative"),
    (["happy", "sad"], "positive"),      # tie: the first polar label
    (["sad", "happy"], "negative"),
    (["surprised", "calm"], "neutral"),  # no polar label
    ([], "neutral"),
])
def test_predicted_sentiment(labels, expected):
    assert predicted_sentiment(labels) == expected


# ---- normalisation and extraction -------------------------------------------------------------

@pytest.mark.parametrize("surface, canonical, basic", [
    ("happy", "happy", "happy"), ("Happiness", "happy", "happy"), ("joyful", "happy", "happy"),
    ("cheerful", "happy", "happy"), ("Very happy mood.", "happy", "happy"),
    ("angry", "angry", "angry"), ("anger", "angry", "angry"), ("furious", "angry", "angry"),
    ("irritated", "angry", "angry"), ("sad", "sad", "sad"), ("sorrowful", "sad", "sad"),
    ("depressed", "sad", "sad"), ("gloomily", "sad", "sad"), ("surprise", "surprised", "surprise"),
    ("astonished", "surprised", "surprise"), ("afraid", "fearful", "fear"),
    ("scared", "fearful", "fear"), ("fear", "fearful", "fear"), ("anxious", "worried", "worried"),
    ("disgusted", "disgusted", "disgust"), ("contempt", "contemptuous", "contempt"),
    ("neutral", "neutral", "neutral"), ("calm", "calm", "neutral"),
    ("'excited'", "excited", "happy"), ("self-deprecating", "self-deprecating", None),
])
def test_normalisation(surface, canonical, basic):
    assert normalize_label(surface) == canonical
    assert basic_emotion(surface) == basic


def test_tables_cover_the_au_vocabulary_and_the_synthetic_labels():
    assert set(EMOTION_WORDS) <= set(surface_table())
    assert {e: basic_emotion(e) for e in EMOTION_PROTOTYPES} == {
        "neutral": "neutral", "happiness": "happy", "sadness": "sad", "surprise": "surprise",
        "fear": "fear", "anger": "angry", "disgust": "disgust", "contempt": "contempt"}
    assert (polarity("joyful"), polarity("furious"), polarity("calm"), polarity("xyz")) == (
        "positive", "negative", "neutral", None)


@pytest.mark.parametrize("text, labels", [
    ("He is not happy.", []),
    ("She isn't angry at all.", []),
    ("He does not look particularly happy, but he is clearly worried.", ["worried"]),
    ("There is no sign of anger; he seems calm.", ["calm"]),
    ("neither happy nor sad", []),
    ("She is not angry and looks sad.", ["sad"]),
    ("He smiled without joy.", []),
    ("happy, not sad", ["happy"]),
    ("No doubt he is furious.", ["angry"]),
    ("The subtitle says 'I hope you love it', and she sounds cheerful.", ["happy"]),
])
def test_negation(text, labels):
    assert LexiconExtractor().extract(text) == labels


def test_label_lists_keep_open_vocabulary_words():
    assert LexiconExtractor().extract("self-deprecating, humorous, Relaxed") == [
        "self-deprecating", "amused", "relaxed"]
    assert labels_from_list("['pleasurable', 'joyful', 'happy']") == ["pleasurable", "happy"]


# ---- files ------------------------------------------------------------------------------------

def test_npz_holds_strings_and_loads_without_pickle(files):
    with np.load(files["npz"], allow_pickle=False) as data:
        assert data["names"].dtype.kind == "U" and data["reasons"].dtype.kind == "U"
        assert dict(zip(data["names"].tolist(), data["reasons"].tolist())) == PREDICTIONS
    assert load_predictions(files["npz"]) == PREDICTIONS
    assert load_predictions(files["jsonl"]) == PREDICTIONS
    lines = files["jsonl"].read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {"name": "s1", "answer": PREDICTIONS["s1"]}


def test_pickled_npz_is_refused(tmp_path):
    bad = tmp_path / "pickled.npz"
    np.savez(bad, name2reason=np.array([{"s1": "happy"}], dtype=object))
    with pytest.raises(InputError, match="names"):
        load_predictions(bad)
    bad2 = tmp_path / "objects.npz"
    np.savez(bad2, names=np.array(["s1"], dtype=object), reasons=np.array(["x"], dtype=object))
    with pytest.raises(InputError, match="without pickle"):
        load_predictions(bad2)


def test_ground_truth_variants(tmp_path):
    gt = load_ground_truth(write_gt(tmp_path / "v.csv", [("a", "0.8"), ("b", "-1.2"), ("c", "0")],
                                    header=("name", "valence")))
    assert gt.sentiment == {"a": "positive", "b": "negative", "c": "neutral"}
    # one label per openset cell (synthetic data): the hit rate comes from openset
    gt = load_ground_truth(write_gt(tmp_path / "o.csv", [("a", "happiness"), ("b", "['fear']")],
                                    header=("name", "openset")))
    assert gt.emotion == {"a": "happy", "b": "fearful"} and "hit_rate" in gt.sources
    gt = load_ground_truth(write_gt(tmp_path / "m.csv", [("a", "happy, sad")],
                                    header=("name", "openset")))
    assert gt.emotion == {} and "hit_rate" not in gt.sources
    with pytest.raises(InputError, match="appears twice"):
        load_ground_truth(write_gt(tmp_path / "d.csv", [("a", "x"), ("a", "y")],
                                   header=("name", "openset")))
    with pytest.raises(InputError, match="neither"):
        load_ground_truth(write_gt(tmp_path / "s.csv", [("a", "great")],
                                   header=("name", "sentiment")))


def test_read_wheel_levels(tmp_path):
    p = tmp_path / "w.csv"
    p.write_text(WHEEL_B_CSV, encoding="utf-8")
    l1, l2 = read_wheel(p, "level1"), read_wheel(p, "level2")
    assert (l1["excited"], l1["joy"], l1["positive"], l1["surprise"]) == (
        "positive", "positive", "positive", "neutral")
    assert (l2["excited"], l2["joy"], l2["positive"], l2["scared"]) == (
        "joy", "joy", "gratitude", "fear")  # a level-1 word: its first level-2 child
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(InputError, match="word,group"):
        read_wheel(tmp_path / "bad.csv")


# ---- LLM extractor ----------------------------------------------------------------------------

def test_llm_answers_are_parsed_and_normalised():
    # A callable stands in for the model here only to feed answers to the parser.
    answers = iter(["Emotions: Joyful, EXCITED.", "```\nangry, not sad\n```", "none",
                    "1. anxious\n2. self-deprecating", "The person feels sad and relieved."])
    seen = []

    def generate(prompts):
        seen.extend(prompts)
        return [next(answers) for _ in prompts]

    out = LLMExtractor(generate).extract_many(["t1", "t2", "", "t3", "t4", "t5"])
    assert out == [["happy", "excited"], ["angry"], [], [], ["worried", "self-deprecating"],
                   ["sad", "relieved"]]
    assert len(seen) == 5 and "Description: t1" in seen[0]  # the empty text is not sent
    assert parse_llm_labels("<think>maybe sad</think>Happy") == ["happy"]


class FakeChatServer:
    """An OpenAI-compatible /v1/chat/completions on loopback. It answers each description with
    a fixed label list from `answers`, and serves the status codes queued in `fail` first."""

    def __init__(self, answers: dict):
        self.answers, self.fail, self.requests = answers, [], []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "headers": dict(self.headers),
                                       "body": body})
                if outer.fail:
                    return self._send(outer.fail.pop(0), {"error": {"message": "try later"}})
                prompt = body["messages"][-1]["content"]
                text = prompt.split("Description: ", 1)[1]
                reply = outer.answers.get(text, "none")
                self._send(200, {"choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant",
                                                          "content": reply}}]})

            def _send(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# What an LLM would answer for the fixture texts; s5's "composed" is read here, so s5 gains
# nothing new ({calm}) and the scores equal the lexicon's.
LLM_ANSWERS = {PREDICTIONS["s1"]: "joyful, excited", PREDICTIONS["s2"]: "irritated",
               PREDICTIONS["s3"]: "Sad, worried", PREDICTIONS["s4"]: "astonished, scared",
               PREDICTIONS["s5"]: "calm, composed", PREDICTIONS["s7"]: "none"}
SECRET = "sk-test-secret-0123456789"


@pytest.fixture
def chat_server():
    server = FakeChatServer(LLM_ANSWERS)
    yield server
    server.close()


def test_endpoint_client_end_to_end(chat_server, tmp_path, monkeypatch):
    monkeypatch.setenv("EVAL_TEST_KEY", SECRET)
    chat_server.fail = [503, 429]  # retried
    endpoint = ChatEndpoint(chat_server.url, "judge-model", api_key_env="EVAL_TEST_KEY",
                            backoff_base=0.001, backoff_cap=0.01, workers=2,
                            cache_path=tmp_path / "llm.sqlite", progress=False)
    extractor = LLMExtractor(endpoint)
    texts = [PREDICTIONS["s1"], PREDICTIONS["s4"], PREDICTIONS["s1"]]
    assert extractor.extract_many(texts) == [["happy", "excited"], ["surprised", "fearful"],
                                             ["happy", "excited"]]
    assert len(chat_server.requests) == 4  # 2 failures + 2 distinct texts
    req = chat_server.requests[-1]
    assert req["path"] == "/v1/chat/completions" and req["body"]["model"] == "judge-model"
    assert req["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert SECRET not in repr(endpoint)
    # cached: a second run sends nothing
    assert extractor.extract_many(texts[:2]) == [["happy", "excited"], ["surprised", "fearful"]]
    assert len(chat_server.requests) == 4
    endpoint.close()


def test_endpoint_errors_are_one_line_input_errors(chat_server, monkeypatch):
    monkeypatch.setenv("EVAL_TEST_KEY", SECRET)
    endpoint = ChatEndpoint(chat_server.url, "m", api_key_env="EVAL_TEST_KEY", max_retries=1,
                            backoff_base=0.001, progress=False)
    chat_server.fail = [401]
    with pytest.raises(EndpointError, match="API key rejected") as err:
        endpoint(["Description: x"])
    assert SECRET not in str(err.value)
    chat_server.fail = [500, 500]
    with pytest.raises(EndpointError, match="gave up after 2 attempts"):
        endpoint(["Description: y"])
    with pytest.raises(InputError, match="no API key"):
        ChatEndpoint("http://10.0.0.1:9/v1", "m", api_key_env="EVAL_UNSET_KEY_VAR")


def test_local_model_extractor_runs(tmp_path, one_thread):
    from tiny_llm import make_tiny_qwen2
    from my_affectgpt.evaluation.label_extractors import HFChatGenerator

    gen = HFChatGenerator.load(make_tiny_qwen2(tmp_path / "tiny"), batch_size=2,
                               max_new_tokens=8, progress=False)
    out = LLMExtractor(gen).extract_many([PREDICTIONS["s1"], "", PREDICTIONS["s2"]])
    # random weights write gibberish; what matters is that the path runs and parses
    assert len(out) == 3 and out[1] == [] and all(isinstance(x, list) for x in out)


# ---- CLI --------------------------------------------------------------------------------------

def test_cli_end_to_end(files, tmp_path):
    out = tmp_path / "report.json"
    r = run_cli("evaluation.py", "--pred", files["npz"], "--gt", files["gt"], "--wheel",
                *files["wheels"], "--json", out, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "hit rate        0.7143  (5/7)" in r.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    check_fixture_report(report)
    assert report["predictions"] == str(files["npz"]) and report["extractor"] == "lexicon"
    # the readable JSONL gives the same report
    r = run_cli("evaluation.py", "--pred", files["jsonl"], "--gt", files["gt"], "--wheel",
                *files["wheels"], "--json", out, "--no-progress")
    assert r.returncode == 0, r.stderr
    check_fixture_report(json.loads(out.read_text(encoding="utf-8")))


def test_cli_with_llm_endpoint(files, tmp_path, chat_server):
    out = tmp_path / "report.json"
    r = run_cli("evaluation.py", "--pred", files["npz"], "--gt", files["gt"], "--wheel",
                *files["wheels"], "--json", out, "--no-progress", "--extractor", "llm",
                "--llm-base-url", chat_server.url, "--llm-model", "judge",
                "--llm-api-key-env", "EVAL_TEST_KEY", env={"EVAL_TEST_KEY": SECRET})
    assert r.returncode == 0, r.stderr
    assert SECRET not in r.stdout + r.stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    check_fixture_report(report)
    assert report["extractor"].startswith("llm endpoint") and SECRET not in json.dumps(report)
    assert len(chat_server.requests) == 6  # one per evaluated video; the extra one not sent


def test_cli_help():
    r = run_cli("evaluation.py", "--help")
    assert r.returncode == 0 and "--wheel" in r.stdout and "--llm-base-url" in r.stdout


def test_cli_errors_are_one_line(files, tmp_path):
    def fails(*args, match):
        r = run_cli("evaluation.py", *args, "--no-progress")
        assert r.returncode == 2, r.stdout + r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0], lines

    fails("--pred", tmp_path / "missing.npz", "--gt", files["gt"], match="does not exist")
    fails("--pred", files["npz"], "--gt", tmp_path / "missing.csv", match="does not exist")
    other = tmp_path / "other.npz"
    write_predictions({"x1": "happy", "x2": "sad"}, other)
    fails("--pred", other, "--gt", files["gt"], match="no prediction name matches")
    bad_cols = write_gt(tmp_path / "bad.csv", [("s1", "x")], header=("video", "openset"))
    fails("--pred", files["npz"], "--gt", bad_cols, match="'name' column")
    no_metric = write_gt(tmp_path / "nometric.csv", [("s1", "x")], header=("name", "reason"))
    fails("--pred", files["npz"], "--gt", no_metric, match="needs one of the columns")
    fails("--pred", files["npz"], "--gt", files["gt"], "--wheel", tmp_path / "no_wheel.json",
          match="does not exist")
    fails("--pred", files["npz"], "--gt", files["gt"], "--extractor", "llm",
          match="--llm-base-url")
    emotion_only = write_gt(tmp_path / "emo.csv", [("s1", "happy")], header=("name", "emotion"))
    fails("--pred", files["npz"], "--gt", emotion_only, "--wheel", files["wheels"][0],
          match="no row has an openset value")
