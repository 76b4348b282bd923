"""`voiceos bench`: latency, stage by stage, over a corpus — `runner` drives it; `corpus`, `metrics`,
`output`, `plot` and `compare` are its parts."""

from voiceos.commands.bench.compare import compare
from voiceos.commands.bench.corpus import corpus_files, default_corpus_dir, load_items
from voiceos.commands.bench.metrics import Aggregate
from voiceos.commands.bench.options import BenchOptions
from voiceos.commands.bench.runner import run_bench

__all__ = ["Aggregate", "BenchOptions", "compare", "corpus_files", "default_corpus_dir", "load_items", "run_bench"]
