"""bAbI parser, vocabulary, batching and datamodule: small hand-written files, fuzzed files, and the
40 real files of ../shared/data/babi/en (skipped when absent)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liafnet.data.babi import (
    BabiDataModule,
    BabiFormatError,
    BucketBatchSampler,
    babi_file,
    build_vocab,
    collate_babi,
    parse_babi,
    split_by_story,
    tokenize,
)
from liafnet.data.errors import DatasetNotFoundError
from tests.helpers import BABI_SAMPLE as SAMPLE
from tests.helpers import SHARED_DATA

BABI_ROOT = SHARED_DATA / "babi"


# datasets.md §6: (stories train/test, vocab incl. index 0, max story tokens, max query tokens).
COUNTS = {
    1: ((200, 200), 22, 66, 4), 2: ((200, 200), 36, 552, 5), 3: ((200, 200), 37, 1348, 8),
    4: ((1000, 1000), 18, 16, 7), 5: ((200, 200), 42, 627, 8), 6: ((200, 200), 38, 156, 6),
    7: ((200, 200), 46, 216, 7), 8: ((200, 200), 48, 358, 5), 9: ((200, 200), 27, 74, 6),
    10: ((200, 200), 28, 86, 6), 11: ((200, 200), 29, 76, 4), 12: ((200, 200), 23, 86, 4),
    13: ((200, 200), 29, 85, 4), 14: ((200, 200), 30, 114, 7), 15: ((250, 250), 28, 44, 6),
    16: ((1000, 1000), 20, 41, 5), 17: ((125, 125), 23, 24, 12), 18: ((198, 199), 23, 130, 10),
    19: ((1000, 1000), 35, 40, 11), 20: ((94, 93), 42, 69, 8),
}


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def check_invariants(examples) -> None:
    """What every parsed example guarantees."""
    for e in examples:
        assert e.question and e.answer and e.supporting
        assert all(fact for fact in e.story)
        assert len(e.story) == len(e.story_ids)
        assert e.story_ids == sorted(set(e.story_ids))
        assert set(e.supporting) <= set(e.story_ids)
        assert e.story_index >= 0


# --------------------------------------------------------------------------------- tokeniser, parser
def test_tokenize_keeps_punctuation_and_words():
    assert tokenize("Where is Mary? ") == ["Where", "is", "Mary", "?"]
    assert tokenize("Mary moved to the bathroom.") == ["Mary", "moved", "to", "the", "bathroom", "."]
    # The (\W+)? regex would split into single characters on Python >= 3.7; ours keeps words whole.
    assert tokenize("hallway") == ["hallway"]
    assert tokenize("  ") == []


def test_parse_sample(tmp_path):
    examples = parse_babi(write(tmp_path / "qa1_sample_train.txt", SAMPLE))
    assert len(examples) == 4
    first, second, third, fourth = examples
    assert first.story == [["Mary", "moved", "to", "the", "bathroom", "."], ["John", "went", "to", "the", "hallway", "."]]
    assert first.question == ["Where", "is", "Mary", "?"] and first.answer == "bathroom" and first.supporting == [1]
    # Questions take an id but are not facts: the second question sees facts 1, 2 and 4.
    assert second.story_ids == [1, 2, 4] and second.supporting == [4] and second.story_index == 0
    assert third.story_ids == [1] and third.story_index == 1 and third.answer == "office"
    assert fourth.answer == "milk,apple" and fourth.supporting == [1, 2] and fourth.story_index == 2
    check_invariants(examples)


def test_crlf_and_blank_lines_are_accepted(tmp_path):
    text = SAMPLE.replace("\n", "\r\n") + "\n\n"
    assert parse_babi(write(tmp_path / "crlf.txt", text)) == parse_babi(write(tmp_path / "lf.txt", SAMPLE))


@pytest.mark.parametrize("text, line, reason", [
    ("Mary moved.\n", 1, "does not start with '<id> '"),
    ("2 Mary moved.\n", 1, "must start at id 1"),
    ("1 Mary moved.\n3 John left.\n", 2, "id 3 follows id 1"),
    ("1 Mary moved.\n2 Where is Mary?\tbathroom\n", 2, "3 tab-separated fields, got 2"),
    ("1 Mary moved.\n2 Where is Mary?\t\t1\n", 2, "one non-empty word"),
    ("1 Mary moved.\n2 Where is Mary?\thall way\t1\n", 2, "one non-empty word"),
    ("1 Mary moved.\n2 Where is Mary?\thall\tone\n", 2, "must be integers"),
    ("1 Mary moved.\n2 Where is Mary?\thall\t\n", 2, "not earlier facts"),
    ("1 Mary moved.\n2 Where is Mary?\thall\t2\n", 2, "not earlier facts"),  # a question, not a fact
    ("1 Mary moved.\n2 Where is Mary?\thall\t3\n", 2, "not earlier facts"),  # a later line
    ("1 Mary moved.\n2 ?\thall\t1\n3 Where?\thall\t2\n", 3, "not earlier facts"),
    ("1 Mary moved.\n2  \t hall\t1\n", 2, "empty question"),
    ("1  \n", 1, "empty fact"),
    (b"1 Mary moved.\n2 Where is \xff?\thall\t1\n", 2, "not valid UTF-8"),
])
def test_malformed_lines_name_file_and_line(tmp_path, text, line, reason):
    path = write(tmp_path / "qa9_bad_train.txt", text)
    with pytest.raises(BabiFormatError, match=re.escape(reason)) as info:
        parse_babi(path)
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert info.value.line == line and info.value.path == path


def test_supporting_ids_from_an_earlier_story_are_rejected(tmp_path):
    text = "1 Mary moved.\n2 John left.\n1 Sandra went.\n2 Where is John?\tx\t2\n"
    with pytest.raises(BabiFormatError, match="not earlier facts"):
        parse_babi(write(tmp_path / "f.txt", text))


# ------------------------------------------------------------------------- property tests (>= 500)
_WORDS = st.sampled_from(["Mary", "John", "went", "to", "the", "kitchen", "garden", "is", "Where", "What"])
_PUNCT = st.sampled_from(["", ".", "?", ",", " ,", "!"])


@st.composite
def babi_text(draw) -> str:
    """A valid file: stories of facts and questions with supporting ids among earlier facts."""
    lines = []
    for _ in range(draw(st.integers(1, 4))):
        fact_ids, line_id = [], 0
        for _ in range(draw(st.integers(1, 6))):
            line_id += 1
            sentence = " ".join(draw(st.lists(_WORDS, min_size=1, max_size=5))) + draw(_PUNCT)
            if fact_ids and draw(st.booleans()):
                support = draw(st.lists(st.sampled_from(fact_ids), min_size=1, max_size=3, unique=True))
                space = draw(st.sampled_from(["", " "]))
                answer = draw(st.sampled_from(["kitchen", "n,w", "nothing", "3"]))
                lines.append(f"{line_id} {sentence}?{space}\t{answer}\t{' '.join(map(str, support))}")
            else:
                fact_ids.append(line_id)
                lines.append(f"{line_id} {sentence}")
    return "\n".join(lines) + "\n"


def _parse_or_documented_error(path: Path, data: bytes) -> None:
    """Either valid examples or a BabiFormatError naming the file and a line that exists."""
    try:
        examples = parse_babi(path)
    except BabiFormatError as error:
        assert str(error).startswith(f"{path}:")
        assert 1 <= error.line <= data.count(b"\n") + 1
        return
    check_invariants(examples)
    assert len(examples) <= data.count(b"\t")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=babi_text())
def test_property_valid_files_parse(tmp_path, text):
    path = write(tmp_path / "valid.txt", text)
    examples = parse_babi(path)
    check_invariants(examples)
    assert len(examples) == text.count("\t") // 2


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=babi_text(), cut=st.floats(0, 1), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=4))
def test_property_truncated_or_corrupted_files(tmp_path, text, cut, flips):
    data = bytearray(text.encode()[: int(len(text) * cut)])
    for position, value in flips:
        if data:
            data[min(int(position * len(data)), len(data) - 1)] = value
    path = write(tmp_path / "damaged.txt", bytes(data))
    _parse_or_documented_error(path, bytes(data))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=300), st.text(alphabet=st.sampled_from("0123456789 \t\n\r?.aZ,\x00é"),
                                                        max_size=300).map(str.encode)))
def test_property_random_bytes(tmp_path, data):
    path = write(tmp_path / "random.txt", data)
    _parse_or_documented_error(path, data)


# ------------------------------------------------------------------------------- batching, splits
def test_collate_pre_pads_time_first():
    batch = [(np.array([3, 4, 5]), np.array([7]), 2), (np.array([6]), np.array([8, 9]), 1)]
    (story, question), answer = collate_babi(batch)
    assert story.shape == (3, 2) and question.shape == (2, 2)
    assert story[:, 0].tolist() == [3, 4, 5] and story[:, 1].tolist() == [0, 0, 6]
    assert question[:, 0].tolist() == [0, 7] and question[:, 1].tolist() == [8, 9]
    assert answer.tolist() == [2, 1] and answer.dtype == torch.long


@pytest.mark.parametrize("shuffle", [True, False])
def test_bucket_sampler_covers_every_index_once_per_epoch(shuffle):
    lengths = np.random.default_rng(0).integers(1, 500, 1003)
    sampler = BucketBatchSampler(lengths, 32, shuffle=shuffle, seed=3, pool_batches=5)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert sorted(i for b in batches for i in b) == list(range(1003))
    assert all(1 <= len(b) <= 32 for b in batches)
    # Bucketing: little padding inside batches (unsorted batches of 32 would nearly double the steps).
    padded = sum(len(b) * lengths[b].max() for b in batches)
    assert padded < (1.3 if shuffle else 1.05) * lengths.sum()


def test_bucket_sampler_is_seeded_per_epoch():
    lengths = np.arange(300)
    a, b = BucketBatchSampler(lengths, 16, True, seed=1), BucketBatchSampler(lengths, 16, True, seed=1)
    first = list(a)
    assert first == list(b)
    a.sampler.set_epoch(1)  # where Lightning's fit loop calls it (batch_sampler.sampler)
    assert list(a) != first
    b.set_epoch(1)
    assert list(a) == list(b)
    assert list(BucketBatchSampler(lengths, 16, True, seed=2)) != first
    assert list(BucketBatchSampler(lengths, 16, False)) == [list(range(i, min(i + 16, 300))) for i in range(0, 300, 16)]


@pytest.mark.parametrize("replicas", [2, 3])
@pytest.mark.parametrize("n", [97, 300])
def test_bucket_sampler_shards_over_ranks(replicas, n):
    lengths = np.random.default_rng(1).integers(1, 200, n)
    ranks = [BucketBatchSampler(lengths, 8, True, seed=5, pool_batches=4, num_replicas=replicas, rank=r)
             for r in range(replicas)]
    single = BucketBatchSampler(lengths, 8, True, seed=5, pool_batches=4)
    for epoch in (0, 1):
        for sampler in ranks + [single]:
            sampler.set_epoch(epoch)
        shares = [list(s) for s in ranks]
        # Training: equal step counts per rank (DDP all-reduces every step), disjoint examples,
        # made of the single-process epoch's batches, with fewer than `replicas` batches dropped.
        assert len({len(share) for share in shares}) == 1 and all(len(s) == len(r) for s, r in zip(shares, ranks))
        seen = [i for share in shares for batch in share for i in batch]
        assert len(seen) == len(set(seen))
        whole = list(single)
        assert all(batch in whole for share in shares for batch in share)
        assert len(whole) - sum(map(len, shares)) < replicas
    # Evaluation: every example exactly once over the ranks, nothing repeated to even them out.
    evaluation = [BucketBatchSampler(lengths, 8, False, num_replicas=replicas, rank=r) for r in range(replicas)]
    seen = [i for s in evaluation for batch in s for i in batch]
    assert sorted(seen) == list(range(n))
    assert [len(list(s)) for s in evaluation] == [len(s) for s in evaluation]
    # Fewer batches than ranks: still at least one batch per rank (Lightning needs one), each example once.
    tiny = [BucketBatchSampler(lengths[:10], 8, False, num_replicas=replicas, rank=r) for r in range(replicas)]
    assert all(len(s) == len(list(s)) == 1 for s in tiny)
    assert sorted(i for s in tiny for batch in s for i in batch) == list(range(10))
    with pytest.raises(ValueError, match="rank 2 of 2"):
        BucketBatchSampler(lengths, 8, False, num_replicas=2, rank=2)


def test_split_by_story_keeps_stories_whole_and_is_seeded():
    stories = [(1, i // 5) for i in range(100)] + [(2, i) for i in range(50)]
    train, val = split_by_story(stories, 0.2, seed=0)
    assert sorted(train + val) == list(range(150)) and not set(train) & set(val)
    assert {stories[i] for i in train}.isdisjoint({stories[i] for i in val})
    assert len({stories[i] for i in val}) == round(70 * 0.2)
    assert split_by_story(stories, 0.2, seed=0) == (train, val)
    assert split_by_story(stories, 0.2, seed=1) != (train, val)
    assert split_by_story(stories, 0.0, seed=0) == (list(range(150)), [])
    with pytest.raises(ValueError, match="val_fraction"):
        split_by_story(stories, 1.0, seed=0)


# -------------------------------------------------------------------------------------- datamodule
@pytest.fixture
def tiny_root(tmp_path) -> Path:
    """A bAbI-layout tree with tasks 1 and 2 (the sample file as both splits)."""
    folder = tmp_path / "tasks_1-20_v1-2" / "en"
    folder.mkdir(parents=True)
    for task, name in ((1, "single-supporting-fact"), (2, "two-supporting-facts")):
        for split in ("train", "test"):
            write(folder / f"qa{task}_{name}_{split}.txt", SAMPLE * 5)
    return tmp_path


def test_datamodule_batches_and_spec(tiny_root):
    dm = BabiDataModule(tiny_root, task=1, batch_size=4, val_fraction=0.2, seed=0)
    assert dm.spec is None
    dm.setup("fit")
    spec = dm.spec
    assert spec.kind == "text" and spec.vocab_size == len(dm.vocab) + 1 == spec.num_classes
    assert spec.story_len == 19 and spec.query_len == 7  # facts 1, 2, 4 of story 0; "What is north of the kitchen ?"
    assert min(dm.vocab.values()) == 1 and "milk,apple" in dm.vocab
    assert len(dm.train_set) + len(dm.val_set) == 20 and len(dm.val_set) == 4  # 3 of 15 stories
    (story, question), answer = next(iter(dm.train_dataloader()))
    assert story.dim() == 2 and question.dim() == 2 and story.shape[1] == question.shape[1] == answer.shape[0]
    assert (story[-1] > 0).all() and (question[-1] > 0).all()  # pre-padded: the last step is real
    for loader in (dm.val_dataloader(), dm.test_dataloader()):
        for (story, _), _ in loader:
            # Each batch pads only to its own longest story.
            assert ((story > 0).sum(0).max() == story.shape[0]).item()


def test_datamodule_joint_tasks_and_nested_root(tiny_root):
    dm = BabiDataModule(tiny_root / "tasks_1-20_v1-2", task="all", batch_size=8)
    with pytest.raises(DatasetNotFoundError, match=r"qa3_\*_train.txt"):
        dm.setup()
    nested = BabiDataModule(tiny_root, task=2)
    nested.setup()
    assert nested.root == tiny_root / "tasks_1-20_v1-2" and len(nested.test_set) == 20


def test_missing_data_names_path_and_make_target(tmp_path):
    dm = BabiDataModule(tmp_path / "nowhere", task=1)
    with pytest.raises(DatasetNotFoundError, match="make data-babi") as info:
        dm.setup()
    assert str(tmp_path / "nowhere" / "en") in str(info.value)


@pytest.mark.parametrize("kwargs, key", [
    ({"task": 0}, "data.task"), ({"task": 21}, "data.task"), ({"task": "3"}, "data.task"),
    ({"variant": "hn"}, "data.variant"), ({"batch_size": 0}, "data.batch_size"),
    ({"val_fraction": 1.0}, "data.val_fraction"), ({"num_workers": -1}, "data.num_workers"),
])
def test_bad_config_values_name_the_key(tmp_path, kwargs, key):
    with pytest.raises(ValueError, match=re.escape(key)):
        BabiDataModule(tmp_path, **kwargs)


# -------------------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def real_root() -> Path:
    if not (BABI_ROOT / "en").is_dir():
        pytest.skip(f"real bAbI data not present at {BABI_ROOT / 'en'}")
    return BABI_ROOT


@pytest.mark.parametrize("task", sorted(COUNTS))
def test_real_task_files(real_root, task):
    train = parse_babi(babi_file(real_root, task, "train"))
    test = parse_babi(babi_file(real_root, task, "test"))
    stories, vocab_size, story_tokens, query_tokens = COUNTS[task]
    assert len(train) == len(test) == 1000
    for examples in (train, test):
        check_invariants(examples)
    assert (len({e.story_index for e in train}), len({e.story_index for e in test})) == stories
    vocab = build_vocab(train + test)
    assert len(vocab) + 1 == vocab_size
    assert all(e.answer in vocab for e in train + test)
    assert max(sum(map(len, e.story)) for e in train + test) == story_tokens
    assert max(len(e.question) for e in train + test) == query_tokens


def test_real_datamodule_task3_buckets_long_stories(real_root):
    dm = BabiDataModule(real_root, task=3, batch_size=32, val_fraction=0.1, seed=0)
    dm.setup()
    assert dm.spec.story_len == 1348 and dm.spec.query_len == 8 and dm.spec.vocab_size == 37
    assert len(dm.train_set) + len(dm.val_set) == 1000 and len(dm.test_set) == 1000
    steps = [story.shape[0] for (story, _), _ in dm.train_dataloader()]
    # Never pad every story to the task maximum: the mean padded length is far below 1,348.
    assert max(steps) <= 1348 and np.mean(steps) < 0.5 * 1348
