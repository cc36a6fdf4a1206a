"""bAbI question answering (Weston et al. 2015): parser, vocabulary, dataset and datamodule.

The pipeline follows the Keras ``babi_rnn`` example that the LIAF-Net bAbI comparison is modelled on:
tokens split on non-word characters with punctuation kept, every question gets all earlier facts of
its story flattened into one token sequence, the vocabulary covers train+test tokens and answers
(index 0 = padding), sequences are pre-padded, and the answer is one vocabulary index.
See docs/babi.md for the choices and how they differ from Keras.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, Dataset, Sampler

from liafnet.data.errors import DatasetNotFoundError, check_choice
from liafnet.data.spec import DataSpec

TASKS = tuple(range(1, 21))
VARIANTS = ("en", "en-10k")
PAD = 0
_TOKEN_SPLIT = re.compile(r"(\W+)")  # not (\W+)?: on Python >= 3.7 that splits into single characters
_LINE = re.compile(r"([0-9]+) (.*)", re.DOTALL)
_IDS = re.compile(r"[0-9]+")


class BabiFormatError(ValueError):
    """A bAbI file line does not follow the format; the message names the file and the line number."""

    def __init__(self, path, line: int, reason: str):
        super().__init__(f"{path}:{line}: {reason} (expected '<id> <fact>' or "
                         "'<id> <question>\\t<answer>\\t<supporting ids>', ids counting up from 1 per story)")
        self.path = path
        self.line = line


@dataclass(frozen=True)
class BabiExample:
    """One question with the facts of its story that precede it.

    ``story_ids`` are the line ids of the facts in ``story``; ``supporting`` are line ids too, and
    always a subset of ``story_ids``. ``story_index`` numbers the stories of the file from 0.
    """

    story: list[list[str]]
    question: list[str]
    answer: str
    supporting: list[int]
    story_ids: list[int]
    story_index: int


def tokenize(text: str) -> list[str]:
    """Keras ``babi_rnn`` tokeniser: split on runs of non-word characters, keep punctuation, drop blanks."""
    return [piece.strip() for piece in _TOKEN_SPLIT.split(text) if piece.strip()]


def parse_babi(path: str | os.PathLike) -> list[BabiExample]:
    """Parse one bAbI file into one example per question.

    Raises :class:`BabiFormatError` naming the file and line for a malformed line: bad id, ids not
    counting up by one within a story, a question without answer or with supporting ids that are not
    earlier facts of its story, an empty fact or question, or bytes that are not UTF-8.
    """
    path = Path(path)
    examples: list[BabiExample] = []
    facts: list[list[str]] = []
    fact_ids: list[int] = []
    previous_id, story_index = 0, -1
    for number, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as error:
            raise BabiFormatError(path, number, f"not valid UTF-8 ({error.reason})") from None
        if not line.strip():
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            raise BabiFormatError(path, number, "the line does not start with '<id> '")
        line_id, text = int(match.group(1)), match.group(2)
        if line_id == 1:
            facts, fact_ids, story_index = [], [], story_index + 1
        elif previous_id == 0:
            raise BabiFormatError(path, number, f"a story must start at id 1, got {line_id}")
        elif line_id != previous_id + 1:
            raise BabiFormatError(path, number, f"id {line_id} follows id {previous_id}")
        previous_id = line_id
        if "\t" not in text:
            tokens = tokenize(text)
            if not tokens:
                raise BabiFormatError(path, number, "empty fact")
            facts.append(tokens)
            fact_ids.append(line_id)
            continue
        parts = text.split("\t")
        if len(parts) != 3:
            raise BabiFormatError(path, number, f"a question line needs 3 tab-separated fields, got {len(parts)}")
        question, answer, support_text = tokenize(parts[0]), parts[1].strip(), parts[2].split()
        if not question:
            raise BabiFormatError(path, number, "empty question")
        if not answer or any(c.isspace() for c in answer):
            raise BabiFormatError(path, number, f"the answer must be one non-empty word, got {parts[1]!r}")
        if not all(_IDS.fullmatch(s) for s in support_text):
            raise BabiFormatError(path, number, f"supporting ids must be integers, got {parts[2]!r}")
        supporting = [int(s) for s in support_text]
        known = set(fact_ids)
        if not supporting or any(s not in known for s in supporting):
            raise BabiFormatError(path, number, f"supporting ids {supporting} are not earlier facts of this story")
        examples.append(BabiExample(list(facts), question, answer, supporting, list(fact_ids), story_index))
    return examples


def build_vocab(examples: Iterable[BabiExample]) -> dict[str, int]:
    """Sorted tokens of stories, questions and answers -> index from 1 (0 is padding).

    Built over train+test, as Keras does: bAbI's test split uses no word outside train except in a
    few tasks, and an unseen word would only ever map to an untrained embedding.
    """
    words: set[str] = set()
    for example in examples:
        for fact in example.story:
            words.update(fact)
        words.update(example.question)
        words.add(example.answer)
    return {word: index for index, word in enumerate(sorted(words), start=1)}


def babi_file(root: str | os.PathLike, task: int, split: str, variant: str = "en") -> Path:
    """The ``qa<task>_<name>_<split>.txt`` file under ``root/variant``, or DatasetNotFoundError."""
    folder = Path(root) / variant
    if not folder.is_dir():
        raise DatasetNotFoundError("babi", folder, "the folder does not exist")
    matches = sorted(folder.glob(f"qa{task}_*_{split}.txt"))
    if len(matches) != 1:
        found = "it is missing" if not matches else f"several files match: {[m.name for m in matches]}"
        raise DatasetNotFoundError("babi", folder / f"qa{task}_*_{split}.txt", found)
    return matches[0]


class BabiDataset(Dataset):
    """Encoded examples: items ``(story ids int64 [Ls], question ids int64 [Lq], answer index)``.

    The story is the concatenation of its facts' tokens (Keras flattens them too).
    """

    def __init__(self, examples: Sequence[BabiExample], vocab: dict[str, int], tasks: Sequence[int] | None = None):
        self.stories = [np.array([vocab[w] for fact in e.story for w in fact], dtype=np.int64) for e in examples]
        self.questions = [np.array([vocab[w] for w in e.question], dtype=np.int64) for e in examples]
        self.answers = np.array([vocab[e.answer] for e in examples], dtype=np.int64)
        self.tasks = np.asarray(tasks if tasks is not None else [0] * len(examples), dtype=np.int64)
        self.story_lengths = np.array([len(s) for s in self.stories], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.answers)

    def __getitem__(self, index: int):
        return self.stories[index], self.questions[index], int(self.answers[index])


def pre_pad(sequences: Sequence[np.ndarray]) -> torch.Tensor:
    """Left-pad with 0 to the longest sequence and stack time-first: ``[L, B]``.

    Pre-padding (as Keras) puts every sequence's last token at the last step, so a recurrent reader
    that takes its last output needs no mask.
    """
    length = max(len(s) for s in sequences)
    out = torch.zeros(length, len(sequences), dtype=torch.long)
    for column, sequence in enumerate(sequences):
        if len(sequence):
            out[length - len(sequence):, column] = torch.from_numpy(sequence)
    return out


def collate_babi(batch):
    """``[(story, question, answer)]`` -> ``((story [Ls, B], question [Lq, B]), answer [B])``."""
    stories, questions, answers = zip(*batch)
    return (pre_pad(stories), pre_pad(questions)), torch.tensor(answers, dtype=torch.long)


class EpochPermutation(Sampler[int]):
    """All indices ``0..n-1`` in a random order that depends only on ``(seed, epoch)``.

    The epoch state of :class:`BucketBatchSampler` lives here, because Lightning calls ``set_epoch``
    on ``dataloader.sampler`` and ``dataloader.batch_sampler.sampler`` at the start of every epoch
    (``lightning.fabric.utilities.data._set_sampler_epoch``), never on the batch sampler itself.
    """

    def __init__(self, n: int, seed: int = 0):
        self.n = n
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning's fit loop at the start of each epoch (also after a resume)."""
        self.epoch = epoch

    def rng(self) -> np.random.Generator:
        return np.random.default_rng((self.seed, self.epoch))

    def __iter__(self) -> Iterator[int]:
        return iter(self.rng().permutation(self.n).tolist())

    def __len__(self) -> int:
        return self.n


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of examples of similar story length, so each batch pads only to its own longest story.

    Training (``shuffle=True``): each epoch takes the indices in the order of :attr:`sampler` (a
    seeded :class:`EpochPermutation`), sorts them by length within pools of ``pool_batches``
    batches, cuts the pools into batches and shuffles the batch order; the randomness depends only
    on ``(seed, epoch)``, so every rank of a DDP run computes the same batches. Evaluation
    (``shuffle=False``): one pass in length order.

    Sharding (``num_replicas > 1``, one per DDP rank): rank ``r`` takes batches ``r, r + R, ...`` of
    that list, so the ranks see disjoint parts of the same length buckets. Training drops the last
    ``len % R`` batches of the epoch (a different few every epoch), so every rank runs the same
    number of optimiser steps, which DDP's gradient all-reduce needs; ``batch_size`` is then the
    per-rank batch. Evaluation drops and repeats nothing: the ranks' shares differ by at most one
    batch and together hold every example exactly once, in the same batches as one process (so
    each story gets the same padding); a split with fewer batches than ranks is cut into one smaller
    batch per rank instead.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool, seed: int = 0,
                 pool_batches: int = 50, num_replicas: int = 1, rank: int = 0):
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be >= 1, got {batch_size}")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} of {num_replicas} replicas: need 0 <= rank < num_replicas")
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.pool = batch_size * pool_batches
        self.num_replicas = num_replicas
        self.rank = rank
        self.sampler = EpochPermutation(len(self.lengths), seed)

    def set_epoch(self, epoch: int) -> None:
        """Same as ``sampler.set_epoch`` (for callers outside Lightning)."""
        self.sampler.set_epoch(epoch)

    def _all_batches(self) -> list[np.ndarray]:
        """Every rank's batches, in epoch order (identical on every rank)."""
        n = len(self.lengths)
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            if 0 < n and self._count_all() < self.num_replicas:
                # Fewer batches than ranks (a tiny split): one smaller batch per rank, as far as the
                # examples go, since Lightning needs at least one batch on every rank.
                return [part for part in np.array_split(order, self.num_replicas) if len(part)]
            return [order[i:i + self.batch_size] for i in range(0, n, self.batch_size)]
        rng = self.sampler.rng()
        order = rng.permutation(n)
        batches = []
        for start in range(0, n, self.pool):
            pool = order[start:start + self.pool]
            pool = pool[np.argsort(self.lengths[pool], kind="stable")]
            batches += [pool[i:i + self.batch_size] for i in range(0, len(pool), self.batch_size)]
        return [batches[i] for i in rng.permutation(len(batches))]

    def _count_all(self) -> int:
        n = len(self.lengths)
        if not self.shuffle:
            return -(-n // self.batch_size)
        return sum(-(-min(self.pool, n - s) // self.batch_size) for s in range(0, n, self.pool))

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._all_batches()
        if self.shuffle:
            batches = batches[:len(batches) - len(batches) % self.num_replicas]
        return (batch.tolist() for batch in batches[self.rank::self.num_replicas])

    def __len__(self) -> int:
        total = self._count_all()
        if self.shuffle:
            return total // self.num_replicas
        if total < self.num_replicas:
            total = min(len(self.lengths), self.num_replicas)
        return len(range(self.rank, total, self.num_replicas))


def split_by_story(stories: Sequence[tuple[int, int]], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded random train/validation split of example indices that keeps each story on one side.

    ``stories[i]`` identifies example ``i``'s story, e.g. ``(task, story_index)``. Questions of one
    story share its facts, so splitting questions would let validation see training stories. The
    validation side gets ``round(number of stories * val_fraction)`` whole stories.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
    keys = sorted(set(stories))
    n_val = int(round(len(keys) * val_fraction))
    val_keys = {keys[i] for i in np.random.default_rng(seed).permutation(len(keys))[:n_val]}
    train = [i for i, key in enumerate(stories) if key not in val_keys]
    val = [i for i, key in enumerate(stories) if key in val_keys]
    return train, val


class BabiDataModule(LightningDataModule):
    """Train/val/test loaders for one bAbI task, or all 20 trained jointly (``task="all"``).

    Validation is a seeded random split of the training file by whole stories (see
    :func:`split_by_story`), so early stopping and checkpoint selection never see the test file.
    Batches are bucketed by story length and pre-padded per batch:
    ``((story [Ls, B], question [Lq, B]), answer [B])``. ``spec`` is complete after ``setup()``;
    its ``num_classes`` is the vocabulary size (the Keras recipe's softmax spans the vocabulary).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        task: int | str = 1,
        variant: str = "en",
        batch_size: int = 32,
        val_fraction: float = 0.1,
        num_workers: int = 0,
        seed: int = 0,
        bucket: bool = True,
    ):
        super().__init__()
        check_choice("data.variant", variant, VARIANTS)
        if task != "all" and (isinstance(task, bool) or not isinstance(task, int) or task not in TASKS):
            raise ValueError(f"data.task must be an integer 1..20 or 'all', got {task!r}")
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be >= 1, got {batch_size}")
        if num_workers < 0:
            raise ValueError(f"data.num_workers must be >= 0, got {num_workers}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
        self.root = self._resolve_root(Path(root), variant)
        self.tasks = list(TASKS) if task == "all" else [task]
        self.variant = variant
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.num_workers = num_workers
        self.seed = seed
        self.bucket = bucket
        self.vocab: dict[str, int] = {}
        self.spec: DataSpec | None = None
        self.train_set = self.val_set = self.test_set = None
        self.bad_files: list[str] = []
        self.test_seen = 0  # test examples evaluated by this rank in the last trainer.test
        self.test_counted: int | None = None  # ... summed over the ranks (after teardown)

    @staticmethod
    def _resolve_root(root: Path, variant: str) -> Path:
        """Accept the folder holding ``en/`` or its parent holding the unpacked ``tasks_1-20_v1-2/``."""
        nested = root / "tasks_1-20_v1-2"
        if not (root / variant).is_dir() and (nested / variant).is_dir():
            return nested
        return root

    def _parse(self, split: str) -> tuple[list[BabiExample], list[int]]:
        examples, tasks = [], []
        for task in self.tasks:
            parsed = parse_babi(babi_file(self.root, task, split, self.variant))
            examples += parsed
            tasks += [task] * len(parsed)
        return examples, tasks

    def setup(self, stage: str | None = None) -> None:
        if self.test_set is not None:  # Lightning calls setup once per stage; build once.
            return
        train, train_tasks = self._parse("train")
        test, test_tasks = self._parse("test")
        self.vocab = build_vocab(train + test)
        train_idx, val_idx = split_by_story(
            [(t, e.story_index) for t, e in zip(train_tasks, train)], self.val_fraction, self.seed)
        self.train_set = BabiDataset([train[i] for i in train_idx], self.vocab, [train_tasks[i] for i in train_idx])
        self.val_set = BabiDataset([train[i] for i in val_idx], self.vocab, [train_tasks[i] for i in val_idx])
        self.test_set = BabiDataset(test, self.vocab, test_tasks)
        everything = train + test
        self.spec = DataSpec(
            kind="text",
            num_classes=len(self.vocab) + 1,
            vocab_size=len(self.vocab) + 1,
            story_len=max(sum(len(fact) for fact in e.story) for e in everything),
            query_len=max(len(e.question) for e in everything),
        )

    def _replicas(self) -> tuple[int, int]:
        """``(world size, global rank)`` of the attached Trainer; ``(1, 0)`` outside one.

        Under DDP the batch sampler shards itself (:class:`BucketBatchSampler`), so Lightning must
        not inject its DistributedSampler: it cannot go into a custom batch sampler, and for
        validation and test it would repeat examples to even out the ranks.
        """
        trainer = self.trainer
        if trainer is None or trainer.world_size == 1:
            return 1, 0
        connector = getattr(trainer, "_accelerator_connector", None)
        if getattr(connector, "use_distributed_sampler", False):
            raise ValueError(
                "data=babi under DDP needs trainer.use_distributed_sampler=false (got true): its "
                "length-bucketing batch sampler shards the batches over the ranks itself. "
                "experiment=babi and experiment=babi_two_tower set it; add "
                "trainer.use_distributed_sampler=false to the command otherwise.")
        return trainer.world_size, trainer.global_rank

    def _loader(self, dataset: BabiDataset, shuffle: bool) -> DataLoader:
        lengths = dataset.story_lengths if self.bucket else np.zeros(len(dataset), dtype=np.int64)
        replicas, rank = self._replicas()
        sampler = BucketBatchSampler(lengths, self.batch_size, shuffle=shuffle, seed=self.seed,
                                     num_replicas=replicas, rank=rank)
        return DataLoader(dataset, batch_sampler=sampler, num_workers=self.num_workers,
                          collate_fn=collate_babi, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        self.test_seen = 0
        return self._loader(self.test_set, shuffle=False)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """Counts the test examples this rank evaluated (see :meth:`teardown`)."""
        if self.trainer is not None and self.trainer.testing:
            self.test_seen += int(batch[1].numel())
        return batch

    def teardown(self, stage: str) -> None:
        """After ``trainer.test``: the number of test examples evaluated, summed over the ranks.

        ``test_counted`` equals ``len(test_set)`` when every test example was evaluated exactly
        once (fewer with ``trainer.limit_test_batches``); the line is logged by rank 0.
        """
        if stage != "test" or self.trainer is None or self.test_set is None:
            return
        seen = torch.tensor(float(self.test_seen), device=self.trainer.strategy.root_device)
        self.test_counted = int(self.trainer.strategy.reduce(seen, reduce_op="sum").item())
        rank_zero_info(f"bAbI test split: {self.test_counted} examples evaluated over "
                       f"{self.trainer.world_size} rank(s); the split holds {len(self.test_set)}")
