"""Tests for my_affectgpt.au.sources: MER-Factory folders and instruction JSONL -> AURecords.

The MER-Factory fixtures follow the files that MER-Factory writes (save_mer_results /
save_au_results in mer_factory/nodes/async_nodes.py, indent=4) and the per-frame variant the
AffectGPT AU-agent fork reads; the values and texts are our own.
"""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings, strategies as st

from my_affectgpt.au.facs import ALL_CODES, PRESENCE_ONLY
from my_affectgpt.au.instruction_jsonl import read_instruction_jsonl
from my_affectgpt.au.mer_factory import find_mer_factory_videos, read_mer_factory_dir, strip_chat_dump
from my_affectgpt.au.sources import AURecord, listing_matches, normalise_au_key, parse_au_listing, parse_au_text
from my_affectgpt.common.errors import InputError


# --------------------------------------------------------------------------- fixture writers

def write_json(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=4, ensure_ascii=False), encoding="utf-8")
    return path


def merr_data(video, frame, top_aus, visual_expression):
    """`<video>_merr_data.json` as the MER pipeline saves it."""
    return {
        "source_path": f"/data/videos/{video}.mp4",
        "audio_path": f"/data/out/{video}/{video}.wav",
        "chronological_emotion_peaks": [f"Peak at {frame / 25:.2f}s: happy (moderate)"],
        "overall_peak_frame_info": {"frame_number": frame, "timestamp": frame / 25,
                                    "top_aus_intensities": top_aus},
        "coarse_descriptions_at_peak": {
            "visual_expression": visual_expression,
            "visual_objective": "A man in a grey jacket sits in front of a bookshelf.",
            "audio_analysis": "He speaks quickly with a rising pitch.",
            "video_content": "The speaker turns towards the camera and keeps talking.",
        },
        "final_summary": "The speaker seems pleased while telling the story.",
    }


def au_analysis(video, peak_description):
    """`<video>_au_analysis.json` as the AU pipeline saves it (current release)."""
    return {"source_path": f"/data/videos/{video}.mp4",
            "chronological_emotion_peaks": ["Peak at 0.96s: sad (slight)"],
            "overall_peak_au_description": peak_description}


def per_frame_analysis():
    """The per-frame variant read by the AffectGPT AU-agent fork."""
    return {
        "per_frame_au_descriptions": [
            {"frame": 40, "timestamp": 1.56,
             "au_description": "Brow lowerer (intensity: 1.31), Lid tightener (intensity: 2.02)",
             "active_aus": {"AU04_r": 1.31, "AU07_r": 2.02}, "is_peak_frame": False,
             "fine_grained_description": ""},
            {"frame": 1, "timestamp": 0.0,
             "au_description": "Upper lip raiser (intensity: 1.12), "
                               "Lip corner puller (smile) (intensity: 0.93)",
             "active_aus": {"AU10_r": 1.12, "AU12_r": 0.93}, "is_peak_frame": False,
             "fine_grained_description": "system\nYou describe faces.\nuser\nAU values: ...\n"
                                         "assistant\nThe upper lip lifts slightly."},
            {"frame": 20, "timestamp": 0.76,
             "au_description": "Jaw drop (intensity: 2.50)",
             "active_aus": {"AU26_r": 2.5, "AU25_r": 1.9}, "is_peak_frame": True,
             "fine_grained_description": ""},
            {"frame": 60, "timestamp": 2.36, "au_description": "Neutral expression.",
             "active_aus": {}, "is_peak_frame": False},
        ],
        "au_info": {"total_frames": 61, "peak_frames": [{"peak_index": 19}]},
        "fine_grained_descriptions": {
            "20": "system\nYou describe faces.\nuser\nAU values: AU25: 1.90, AU26: 2.50\n"
                  "assistant\nThe jaw drops clearly and the lips part.",
        },
        "summary_description": {"1": "A slight lift of the upper lip with faint lip corner pull."},
    }


# --------------------------------------------------------------------------- AU keys and text

@pytest.mark.parametrize("key, column", [
    ("AU12_r", "AU12_r"), ("AU12", "AU12_r"), ("AU 12", "AU12_r"), (" au12_R ", "AU12_r"),
    ("AU4", "AU04_r"), ("AU25_c", "AU25_c"), ("AU28", "AU28_c"), ("AU28_r", "AU28_c"),
    (" AU45_r", "AU45_r"),
])
def test_normalise_au_key(key, column):
    assert normalise_au_key(key) == column


@pytest.mark.parametrize("key", ["AU99", "AU16_r", "AU", "frame", "AU12_x", "12"])
def test_normalise_au_key_rejects(key):
    with pytest.raises(ValueError):
        normalise_au_key(key)


EXPECTED = {"AU04_r": 2.24, "AU07_r": 1.87}


@pytest.mark.parametrize("text", [
    "AU values: AU04: 2.24, AU07: 1.87",
    "AU values: AU04_r: 2.24, AU07_r: 1.87",
    "AU4=2.24, AU7=1.87",
    "AU 04: 2.24, AU 07: 1.87",
    "AU values: AU04: 2.24, AU07: 1.87.",
    "AU detections: AU04: 2.24; AU07: 1.87",
    "AU04: 2.24 AU07: 1.87",
    "AU values: AU04: 2.24\nAU values: AU07: 1.87",
    "- AU04: 2.24\n- AU07: 1.87",
    "au04: 2.24, au07: 1.87\r\n",
])
def test_parse_au_text_spellings(text):
    assert parse_au_text(text) == EXPECTED


def test_parse_au_text_ignores_prose_and_descriptions():
    text = ("Emotion: [tense, doubtful]\n"
            "Prompt: Given the emotion label, AU intensity values, and their semantic "
            "descriptions, provide a description:\n"
            "AU values: AU04: 2.24, AU07: 1.87\n"
            "AU descriptions: Brow lowerer (intensity: 2.24), Lid tightener (intensity: 1.87)\n"
            "Note that AU12: 3.0 is not listed on its own line.")
    assert parse_au_text(text) == EXPECTED
    assert parse_au_text("No action units here.") == {}


def test_parse_au_text_presence_and_au28():
    assert parse_au_text("AU values: AU28: 1, AU25_c: 1, AU45: 0.6") == {
        "AU28_c": 1.0, "AU25_c": 1.0, "AU45_r": 0.6}


@pytest.mark.parametrize("text, fragment", [
    ("AU values: AU99: 1.0", "AU99"),
    ("AU values: AU04: 2.2, AU04_r: 2.5", "given twice"),
    ("AU values: AU04: 7.5", "outside"),
    ("AU values: AU04: -0.5", "outside"),
])
def test_parse_au_text_errors(text, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_au_text(text)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(ALL_CODES),
                       st.floats(0, 5, allow_nan=False).map(lambda v: round(v, 2)),
                       min_size=1, max_size=8),
       st.sampled_from(["{c}: {v}", "{c}_r: {v}", "AU{n}={v}", "AU {c2}: {v}"]),
       st.sampled_from([", ", "; ", " "]), st.booleans())
def test_parse_au_text_round_trip(values, spelling, sep, period):
    items = [spelling.format(c=c, v=v, n=int(c[2:]), c2=c[2:]) for c, v in values.items()]
    text = "Describe the face.\nAU values: " + sep.join(items) + ("." if period else "")
    parsed = parse_au_text(text)
    expected = {(f"{c}_c" if c in PRESENCE_ONLY else f"{c}_r"): v for c, v in values.items()}
    assert parsed == pytest.approx(expected)


def test_parse_au_listing():
    text = ("Brow lowerer (intensity: 0.88), Upper lip raiser (intensity: 2.37), "
            "Lip corner puller (smile) (intensity: 1.73)")
    assert parse_au_listing(text) == {"AU04_r": 0.88, "AU10_r": 2.37, "AU12_r": 1.73}
    assert parse_au_listing("Neutral expression at the overall peak frame.") == {}
    assert parse_au_listing("The person smiles broadly.") is None
    assert parse_au_listing("Brow lowerer (intensity: 0.88), Ear wiggler (intensity: 1.0)") is None
    assert listing_matches(text, {"AU04_r": 0.881, "AU10_r": 2.37, "AU12_r": 1.7349})
    assert not listing_matches(text, {"AU04_r": 0.88, "AU10_r": 2.37})
    assert not listing_matches(text, {"AU04_r": 0.88, "AU10_r": 2.37, "AU12_r": 1.80})


def test_strip_chat_dump():
    assert strip_chat_dump("system\nS\nuser\nU\nassistant\nThe brows lower.") == "The brows lower."
    assert strip_chat_dump("The assistant noted\nassistant\nfoo") == "The assistant noted\nassistant\nfoo"
    assert strip_chat_dump("  ") is None


# --------------------------------------------------------------------------- MER-Factory folders

def test_mer_pipeline_peak_frame(tmp_path):
    top = {"AU06_r": 2.13, "AU12_r": 3.2, "AU25_r": 1.05}
    listing = ("Cheek raiser (intensity: 2.13), Lip corner puller (smile) (intensity: 3.20), "
               "Lips part (intensity: 1.05)")
    write_json(tmp_path / "clip_b" / "clip_b_merr_data.json", merr_data("clip_b", 37, top, listing))
    # Listing that does not describe the peak frame's values -> no answer.
    write_json(tmp_path / "clip_a" / "clip_a_merr_data.json",
               merr_data("clip_a", 12, {"AU04_r": 1.5}, "Brow lowerer (intensity: 2.90)"))
    records = list(read_mer_factory_dir(tmp_path, listing_answers=True))
    assert records == [
        AURecord("clip_a", 12, {"AU04_r": 1.5}, None, "mer-factory"),
        AURecord("clip_b", 37, top, listing, "mer-factory"),
    ]
    no_listing = list(read_mer_factory_dir(tmp_path, listing_answers=False))
    assert [r.answer for r in no_listing] == [None, None]


def test_mer_and_au_pipeline_in_one_folder(tmp_path):
    """AU analysis + MER data of one video: one peak record, answer checked against both."""
    top = {"AU01_r": 2.2, "AU04_r": 1.81, "AU15_r": 2.4}
    listing = ("Inner brow raiser (intensity: 2.20), Brow lowerer (intensity: 1.81), "
               "Lip corner depressor (intensity: 2.40)")
    write_json(tmp_path / "s1" / "s1_merr_data.json", merr_data("s1", 24, top, "N/A"))
    write_json(tmp_path / "s1" / "s1_au_analysis.json", au_analysis("s1", listing))
    assert list(read_mer_factory_dir(tmp_path, listing_answers=True)) == [
        AURecord("s1", 24, top, listing, "mer-factory")]


def test_au_pipeline_alone_gives_unknown_frame(tmp_path):
    listing = "Lid tightener (intensity: 1.64), Lip tightener (intensity: 1.08)"
    write_json(tmp_path / "v2" / "v2_au_analysis.json", au_analysis("v2", listing))
    write_json(tmp_path / "v1" / "v1_au_analysis.json",
               au_analysis("v1", "Neutral expression at the overall peak frame."))
    # An older release stored the listing as peak_au_text, beside an LLM summary.
    write_json(tmp_path / "v3" / "v3_au_analysis.json",
               {"video_id": "v3", "peak_au_text": "Blink (intensity: 3.10)",
                "llm_facial_summary": "The eyes close firmly."})
    assert list(read_mer_factory_dir(tmp_path, listing_answers=True)) == [
        AURecord("v1", -1, {}, "Neutral expression at the overall peak frame.", "mer-factory"),
        AURecord("v2", -1, {"AU07_r": 1.64, "AU23_r": 1.08}, listing, "mer-factory"),
        AURecord("v3", -1, {"AU45_r": 3.1}, "Blink (intensity: 3.10)", "mer-factory"),
    ]


def test_per_frame_variant(tmp_path):
    write_json(tmp_path / "samplenew_007" / "samplenew_007_au_analysis.json", per_frame_analysis())
    records = list(read_mer_factory_dir(tmp_path, listing_answers=True))
    assert [r.frame for r in records] == [1, 20, 40, 60]
    by_frame = {r.frame: r for r in records}
    # summary_description beats the chat dump in fine_grained_description
    assert by_frame[1].answer == "A slight lift of the upper lip with faint lip corner pull."
    assert by_frame[1].au == {"AU10_r": 1.12, "AU12_r": 0.93}
    # fine_grained_descriptions (frame-keyed), stripped to the assistant part
    assert by_frame[20].answer == "The jaw drops clearly and the lips part."
    # no natural text; the listing names exactly this frame's AUs
    assert by_frame[40].answer == "Brow lowerer (intensity: 1.31), Lid tightener (intensity: 2.02)"
    # a neutral frame: no AU above MER-Factory's threshold
    assert by_frame[60].au == {} and by_frame[60].answer == "Neutral expression."
    assert all(r.video == "samplenew_007" and r.source == "mer-factory" for r in records)


def test_per_frame_listing_must_match(tmp_path):
    data = per_frame_analysis()
    del data["fine_grained_descriptions"]
    # frame 20's listing omits AU25, so it does not describe that frame
    write_json(tmp_path / "x" / "x_au_analysis.json", data)
    (r20,) = [r for r in read_mer_factory_dir(tmp_path, listing_answers=True) if r.frame == 20]
    assert r20.answer is None


def test_per_frame_variant_with_merr_peak(tmp_path):
    """The MER pipeline's peak frame joins the per-frame records unless already covered."""
    write_json(tmp_path / "a" / "a_au_analysis.json", per_frame_analysis())
    write_json(tmp_path / "a" / "a_merr_data.json",
               merr_data("a", 20, {"AU26_r": 2.7}, "Jaw drop (intensity: 2.70)"))
    write_json(tmp_path / "b" / "b_au_analysis.json", per_frame_analysis())
    write_json(tmp_path / "b" / "b_merr_data.json",
               merr_data("b", 33, {"AU26_r": 2.6}, "Jaw drop (intensity: 2.60)"))
    records = list(read_mer_factory_dir(tmp_path, listing_answers=True))
    assert [(r.video, r.frame) for r in records] == [
        ("a", 1), ("a", 20), ("a", 40), ("a", 60),
        ("b", 1), ("b", 20), ("b", 33), ("b", 40), ("b", 60)]
    assert records[1].au == {"AU26_r": 2.5, "AU25_r": 1.9}  # the per-frame entry wins
    assert records[6].au == {"AU26_r": 2.6} and records[6].answer == "Jaw drop (intensity: 2.60)"


def test_key_spellings_in_json(tmp_path):
    """OpenFace CSVs with padded headers give keys such as ' AU06_r'; others drop the suffix."""
    top = {" AU06_r": 1.4, "AU 12": 2.0, "AU28": 1}
    write_json(tmp_path / "k" / "k_merr_data.json", merr_data("k", 5, top, ""))
    (record,) = read_mer_factory_dir(tmp_path, listing_answers=True)
    assert record.au == {"AU06_r": 1.4, "AU12_r": 2.0, "AU28_c": 1.0}


def test_nested_dataset_layout_is_sorted(tmp_path):
    listing = "Dimpler (intensity: 1.39)"
    for rel in ["MER2024/zz", "MER2023/b", "MER2023/a", "CH-SIMS/m"]:
        video = rel.split("/")[1]
        write_json(tmp_path / rel / f"{video}_merr_data.json",
                   merr_data(video, 3, {"AU14_r": 1.39}, listing))
    videos = [v.video for v in find_mer_factory_videos(tmp_path)]
    assert videos == ["m", "a", "b", "zz"]
    assert [r.video for r in read_mer_factory_dir(tmp_path)] == videos
    # deterministic: a second pass gives the same records
    assert list(read_mer_factory_dir(tmp_path)) == list(read_mer_factory_dir(tmp_path))


def test_malformed_file_names_it(tmp_path):
    write_json(tmp_path / "ok" / "ok_merr_data.json",
               merr_data("ok", 9, {"AU12_r": 1.2}, "Lip corner puller (smile) (intensity: 1.20)"))
    bad = tmp_path / "bad" / "bad_au_analysis.json"
    bad.parent.mkdir()
    bad.write_text('{"per_frame_au_descriptions": [', encoding="utf-8")
    with pytest.raises(InputError) as err:
        list(read_mer_factory_dir(tmp_path))
    assert err.value.path == str(bad) and "invalid JSON" in err.value.cause
    skipped = []
    records = list(read_mer_factory_dir(tmp_path, on_error=skipped.append))
    assert [r.video for r in records] == ["ok"]
    assert [e.path for e in skipped] == [str(bad)]


@pytest.mark.parametrize("mutate, fragment", [
    (lambda d: d["per_frame_au_descriptions"][0]["active_aus"].update({"AU99_r": 1.0}), "AU99"),
    (lambda d: d["per_frame_au_descriptions"][1].update({"frame": "one"}), "frame number"),
    (lambda d: d["per_frame_au_descriptions"][2].update({"frame": 40}), "appears twice"),
    (lambda d: d["per_frame_au_descriptions"][0]["active_aus"].update({"AU04_r": "high"}),
     "not a number"),
    (lambda d: d.update({"fine_grained_descriptions": ["x"]}), "keyed by frame"),
    (lambda d: d["per_frame_au_descriptions"][3].pop("active_aus"), "active_aus is missing"),
])
def test_bad_structure_names_file_and_place(tmp_path, mutate, fragment):
    data = per_frame_analysis()
    mutate(data)
    path = write_json(tmp_path / "v" / "v_au_analysis.json", data)
    with pytest.raises(InputError, match=fragment) as err:
        list(read_mer_factory_dir(tmp_path))
    assert err.value.path == str(path)


def test_top_level_must_be_object(tmp_path):
    path = write_json(tmp_path / "v" / "v_merr_data.json", [1, 2])
    with pytest.raises(InputError, match="JSON object") as err:
        list(read_mer_factory_dir(tmp_path))
    assert err.value.path == str(path)


def test_bad_dirs(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        list(read_mer_factory_dir(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "clip.csv").write_text("frame, AU01_r\n1, 0.5\n")
    with pytest.raises(InputError, match="no MER-Factory files") as err:
        list(read_mer_factory_dir(tmp_path / "empty"))
    assert err.value.path == str(tmp_path / "empty")
    (tmp_path / "file.json").write_text("{}")
    with pytest.raises(InputError, match="not a directory"):
        list(read_mer_factory_dir(tmp_path / "file.json"))


def test_files_without_au_values(tmp_path):
    # The oldest AU-pipeline output holds only emotion peaks: no AU values to learn from.
    write_json(tmp_path / "old" / "old_au_analysis.json",
               {"video_id": "old", "chronological_emotion_peaks": ["neutral"]})
    with pytest.raises(InputError, match="none of the 1 MER-Factory file"):
        list(read_mer_factory_dir(tmp_path))


# --------------------------------------------------------------------------- instruction JSONL

def write_jsonl(path, rows):
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_alpaca(tmp_path):
    path = write_jsonl(tmp_path / "au_train.jsonl", [
        {"instruction": "Generate a facial expression description based on AU detections.",
         "input": "Prompt: Describe the face.\nAU values: AU04: 2.24, AU07: 1.87\n"
                  "AU descriptions: Brow lowerer (intensity: 2.24), Lid tightener (intensity: 1.87)",
         "output": "The brows are drawn down and the eyelids tighten."},
        {"instruction": "AU values: AU12_r: 3.1, AU06_r: 2.0", "input": "", "output": "",
         "video": "vid_9", "frame": 77},
    ])
    assert list(read_instruction_jsonl(path)) == [
        AURecord("au_train_1", -1, EXPECTED, "The brows are drawn down and the eyelids tighten.",
                 "alpaca"),
        AURecord("vid_9", 77, {"AU12_r": 3.1, "AU06_r": 2.0}, None, "alpaca"),
    ]


def test_sharegpt_conversations(tmp_path):
    path = write_jsonl(tmp_path / "sg.jsonl", [
        {"name": "clip_3", "conversations": [
            {"from": "system", "value": "You describe facial muscle movements."},
            {"from": "human", "value": "Describe the face.\nAU values: AU01: 1.5, AU02: 1.2."},
            {"from": "gpt", "value": "Both the inner and outer brows rise slightly."}]},
        {"id": 42, "frame": "8", "conversations": [
            {"from": "human", "value": "Hello"},
            {"from": "gpt", "value": "Hi"},
            {"from": "human", "value": "AU values: AU45: 4.1"}]},
    ])
    assert list(read_instruction_jsonl(path)) == [
        AURecord("clip_3", -1, {"AU01_r": 1.5, "AU02_r": 1.2},
                 "Both the inner and outer brows rise slightly.", "sharegpt"),
        AURecord("42", 8, {"AU45_r": 4.1}, None, "sharegpt"),
    ]


def test_openai_messages(tmp_path):
    path = write_jsonl(tmp_path / "msgs.jsonl", [
        {"messages": [{"role": "system", "content": "Describe faces."},
                      {"role": "user", "content": "AU values: AU 26: 2.5, AU 25: 1.9"},
                      {"role": "assistant", "content": "The jaw drops and the lips part. "}]},
        # MER-Factory's own ShareGPT export uses role "gpt" and a "videos" list
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "AU9=3.0, AU10=2.2"}]},
                      {"role": "gpt", "content": "The nose wrinkles strongly."}],
         "videos": ["/data/videos/sample_00042.mp4"]},
        # our own dataset line (DESIGN.md §4): the structured "au" object is used
        {"id": "vid0001_f0042", "video": "vid0001", "frame": 42, "source": "openface+rule",
         "au": {"AU06_r": 2.13, "AU12_r": 3.2, "AU25_c": 1},
         "messages": [{"role": "user", "content": "AUs: AU06 cheek raiser 2.1"},
                      {"role": "assistant", "content": "Marked cheek raiser (AU06)."}]},
    ])
    assert list(read_instruction_jsonl(path)) == [
        AURecord("msgs_1", -1, {"AU26_r": 2.5, "AU25_r": 1.9},
                 "The jaw drops and the lips part.", "sharegpt"),
        AURecord("sample_00042", -1, {"AU09_r": 3.0, "AU10_r": 2.2},
                 "The nose wrinkles strongly.", "sharegpt"),
        AURecord("vid0001", 42, {"AU06_r": 2.13, "AU12_r": 3.2, "AU25_c": 1.0},
                 "Marked cheek raiser (AU06).", "sharegpt"),
    ]


def test_mixed_styles_and_blank_lines_keep_line_numbers(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([
        json.dumps({"instruction": "x", "input": "AU values: AU20: 1.1", "output": "y"}),
        "",
        json.dumps({"conversations": [{"from": "human", "value": "AU23: 2"}]}),
    ]) + "\n", encoding="utf-8")
    records = list(read_instruction_jsonl(path))
    assert [(r.video, r.source) for r in records] == [("mixed_1", "alpaca"), ("mixed_3", "sharegpt")]


@pytest.mark.parametrize("lines, line_no, fragment", [
    (['{"instruction": "AU values: AU04: 1", "output": "x"}', '{"instruction": "AU04: 1", '],
     2, "invalid JSON"),
    (['{"instruction": "Describe the face.", "input": "smiling", "output": "x"}'], 1,
     "no AU values"),
    (['', '{"input": "AU values: AU04: 1.0, AU99: 2.0"}'], 2, "AU99"),
    (['{"input": "AU values: AU04: 1.0, AU04: 2.0"}'], 1, "given twice"),
    (['{"input": "AU values: AU04: 6.0"}'], 1, "outside"),
    (['[1, 2]'], 1, "JSON object"),
    (['{"text": "AU values: AU04: 1.0"}'], 1, "neither Alpaca"),
    (['{"messages": [{"role": "narrator", "content": "AU04: 1"}]}'], 1, "unknown role"),
    (['{"input": "AU04: 1", "frame": "first"}'], 1, "frame"),
    (['{"input": "AU04: 1", "output": 3}'], 1, "output"),
    (['{"input": "AU04: 1", "au": {"AU77": 1}}'], 1, "AU77"),
])
def test_jsonl_errors_name_the_line(tmp_path, lines, line_no, fragment):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        list(read_instruction_jsonl(path))
    assert err.value.path == str(path)
    assert err.value.cause.startswith(f"line {line_no}: ")
    assert fragment in err.value.cause


def test_jsonl_file_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        list(read_instruction_jsonl(tmp_path / "none.jsonl"))
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(InputError, match="no records"):
        list(read_instruction_jsonl(tmp_path / "empty.jsonl"))
    (tmp_path / "latin1.jsonl").write_bytes(b'{"input": "AU04: 1 \xe9"}\n')
    with pytest.raises(InputError, match="UTF-8"):
        list(read_instruction_jsonl(tmp_path / "latin1.jsonl"))


def test_values_are_plain_floats(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"input": "AU values: AU28: 1, AU05: 3"}])
    (record,) = read_instruction_jsonl(path)
    assert record.au == {"AU28_c": 1.0, "AU05_r": 3.0}
    assert all(type(v) is float and math.isfinite(v) for v in record.au.values())
