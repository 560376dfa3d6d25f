"""pytest plugin: tiny trained runs and their exports, made once per test session.

Loaded with ``pytest_plugins = ["trained_runs"]`` by the export and inference tests, so the
(tens of seconds of) training per architecture is shared between them. Each architecture is
trained only when a test first asks for it.
"""

import pytest

from tiny import tiny_config, tiny_corpus


class TrainedRuns:
    """arch -> run directory (trained on the tiny synthetic corpus, 1 epoch) and its export."""

    def __init__(self, root):
        self.root = root
        self._runs, self._exports, self._signatures = {}, {}, {}

    def corpus(self):
        return tiny_corpus(self.root / "corpus")

    def run(self, arch):
        if arch not in self._runs:
            from ser_keras.training import train

            config = tiny_config(arch, self.corpus(), self.root / "cache", epochs=1)
            self._runs[arch], _ = train(config, runs_dir=self.root / "runs", progress=False, verbose=0)
        return self._runs[arch]

    def export(self, arch):
        if arch not in self._exports:
            from ser_keras.export import export_run

            self._exports[arch] = export_run(self.run(arch), root=self.root / "saved_models")
        return self._exports[arch]

    def signature(self, arch):
        """The reloaded export's ``serving_default`` (loaded once)."""
        if arch not in self._signatures:
            from ser_keras.export import load_signature

            self._signatures[arch] = load_signature(self.export(arch))  # (loaded object, signature)
        return self._signatures[arch][1]


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory):
    return TrainedRuns(tmp_path_factory.mktemp("trained_runs"))
