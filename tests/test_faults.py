"""Faults of the machine, not of the inputs (issue 29): damaged caches, full or read-only disks,
other processes, tables too large for the time a user expects.

Real faults where one can be made (a truncated file, a second process, ``chmod``), injected ones
where not: a full disk is a write that stops half-way with ``ENOSPC``; a read-only folder is,
besides ``chmod`` (which does not stop root), an audit hook that fails every write under it with
``EROFS`` as a read-only mount does. Each test asserts what the user sees. No test depends on
wall-clock time: the slow-call warnings are estimates, and other processes are synchronised
through pipes.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from mitra_sklearn import MitraClassifier, load_model, save_model
from mitra_sklearn import checkpoint as checkpoint_module
from mitra_sklearn._inference import InferenceRunner
from mitra_sklearn.checkpoint import checkpoint_info, resolve_checkpoint, write_checksums
from mitra_sklearn.exceptions import CheckpointIntegrityError, CheckpointNotFoundError, CheckpointWriteError
from mitra_sklearn.model import MitraConfig, MitraModel
from pretraining.config import preset
from pretraining.runfolder import RunFolder, RunFolderInUseError, TrainingState, campaign_step, pack_campaign
from pretraining.train import train

from ._fault_injection import READ_ONLY, download_into_cache, fake_online
from .conftest import OFFICIAL_LIKE_COMMIT, make_tiny_checkpoint, strip_metadata

V2, V1 = "autogluon/mitra-classifier-2", "autogluon/mitra-classifier"
IS_ROOT = getattr(os, "geteuid", lambda: -1)() == 0
ROOT_SKIP = "root writes through chmod: the injected variant of this test covers it"


# ---------------------------------------------------------------------------- fixtures and helpers
def _data(n: int = 40, n_features: int = 3, seed: int = 0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, n_features)
    return X, (X[:, 0] > 0).astype(int)


def _fit(**params):
    X, y = _data()
    return MitraClassifier(n_estimators=1, random_state=0, **params).fit(X, y)


def _hub_snapshot(cache: Path, repo: str, source: Path) -> Path:
    """A checkpoint laid out as huggingface_hub does: blobs named by content, snapshot links to them."""
    repo_dir = cache / ("models--" + repo.replace("/", "--"))
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text(OFFICIAL_LIKE_COMMIT)
    snapshot = repo_dir / "snapshots" / OFFICIAL_LIKE_COMMIT
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo_dir / "blobs").mkdir(exist_ok=True)
    for name in ("config.json", "model.safetensors"):
        data = (source / name).read_bytes()
        # Large files are stored under their SHA-256, small ones under their git blob id (40 hex digits).
        blob_name = (hashlib.sha256(data) if name.endswith(".safetensors") else hashlib.sha1(data)).hexdigest()
        (repo_dir / "blobs" / blob_name).write_bytes(data)
        (snapshot / name).unlink(missing_ok=True)
        (snapshot / name).symlink_to(Path("..", "..", "blobs", blob_name))
    return snapshot


def _official_like(tmp_path: Path, seed: int = 0) -> Path:
    return strip_metadata(make_tiny_checkpoint(tmp_path / f"official-{seed}", "CLASSIFICATION", seed=seed))


def _truncate(path: Path, keep: int = 1000) -> None:
    path = path.resolve()
    path.write_bytes(path.read_bytes()[:keep])


def _messages(record, text: str) -> list[str]:
    return [str(w.message) for w in record if text in str(w.message)]


@contextmanager
def read_only(folder: Path, how: str):
    """``folder`` read-only for the block: ``chmod`` (a real fault; not for root) or injected."""
    if how == "chmod":
        if IS_ROOT:
            pytest.skip(ROOT_SKIP)
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")] if p.is_dir()}
        for path in modes:
            path.chmod(0o555)
        try:
            yield
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    root = os.path.realpath(folder)
    READ_ONLY.add(root)
    try:
        yield
    finally:
        READ_ONLY.discard(root)


def full_disk(monkeypatch, *, after: int = 0) -> list[str]:
    """Writes stop half-way with ENOSPC from the ``after``-th file written on; returns the names tried."""
    tried: list[str] = []

    def write(handle, data):
        tried.append(handle.name)
        if len(tried) <= after:
            handle.write(data)
            return
        handle.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint_module, "_write_bytes", write)
    return tried


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------- 1. damaged caches
def test_none_passes_over_a_truncated_official_file_with_one_warning(tmp_path, hub_cache, fresh_warnings):
    snapshot = _hub_snapshot(hub_cache, V2, _official_like(tmp_path))
    _truncate(snapshot / "model.safetensors")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        fitted = _fit()
    assert fitted.checkpoint_ == "mitra-small-classifier"  # offline: the next candidates, finally the shipped one
    [message] = _messages(record, "checkpoint=None)")
    assert f"{snapshot / 'model.safetensors'} is truncated: 1,000 bytes, shorter than its" in message  # which, why
    assert f"delete the snapshot folder {snapshot}" in message and "force_download=True" in message  # the repair


def test_none_uses_the_next_official_checkpoint_when_the_newest_is_damaged(tmp_path, hub_cache, fresh_warnings):
    _truncate(_hub_snapshot(hub_cache, V2, _official_like(tmp_path)) / "config.json", keep=5)
    _hub_snapshot(hub_cache, V1, _official_like(tmp_path, seed=1))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        fitted = _fit()
    assert fitted.checkpoint_ == V1
    [message] = _messages(record, "checkpoint=None)")
    assert "config.json" in message and "is not a valid Mitra config" in message and "force_download=True" in message


def test_none_downloads_a_damaged_official_file_again_when_online(tmp_path, hub_cache, monkeypatch, fresh_warnings):
    from huggingface_hub.errors import LocalEntryNotFoundError

    source = _official_like(tmp_path)
    snapshot = _hub_snapshot(hub_cache, V2, source)
    _truncate(snapshot / "model.safetensors")
    forced = []

    def download(repo_id, filename, *, revision=None, cache_dir=None, token=None, local_files_only=False,
                 force_download=False):
        if repo_id != V2:
            raise LocalEntryNotFoundError("not cached")
        if force_download:  # what huggingface_hub does: fetch the file again over the cached one
            forced.append(filename)
            (snapshot / filename).resolve().write_bytes((source / filename).read_bytes())
        return str(snapshot / filename)

    fake_online(monkeypatch.setattr, download)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        fitted = _fit()
    assert forced == ["config.json", "model.safetensors"]
    assert fitted.checkpoint_ == V2 and "downloaded again" in fitted.checkpoint_info_.reason
    [message] = _messages(record, "checkpoint=None)")
    assert "damaged in the Hub cache (is truncated" in message and "downloaded it again" in message


def test_an_explicit_repo_id_with_a_damaged_cached_file_names_the_repair(tmp_path, hub_cache, monkeypatch):
    source = _official_like(tmp_path)
    snapshot = _hub_snapshot(hub_cache, V2, source)
    _truncate(snapshot / "model.safetensors")
    blob = (snapshot / "model.safetensors").resolve()
    with pytest.raises(CheckpointIntegrityError) as caught:
        _fit(checkpoint=V2)  # never a fallback for an explicit reference
    message = str(caught.value)
    assert str(snapshot / "model.safetensors") in message and "is truncated" in message
    assert f"delete the snapshot folder {snapshot} and the blob it links to, {blob}" in message
    assert f"mitra_sklearn.load_model({V2!r}, force_download=True)" in message and "--force-download" in message
    # The repair it names works.
    def download(repo_id, filename, *, revision=None, cache_dir=None, token=None, local_files_only=False,
                 force_download=False):
        if force_download:
            (snapshot / filename).resolve().write_bytes((source / filename).read_bytes())
        return str(snapshot / filename)

    fake_online(monkeypatch.setattr, download)
    load_model(V2, force_download=True)
    assert _fit(checkpoint=V2).checkpoint_info_.revision == OFFICIAL_LIKE_COMMIT


def test_a_damaged_local_folder_names_the_file_and_the_repair(tmp_path):
    folder = make_tiny_checkpoint(tmp_path / "mine", "CLASSIFICATION")
    size = (folder / "model.safetensors").stat().st_size
    _truncate(folder / "model.safetensors", keep=size - 10)
    with pytest.raises(CheckpointIntegrityError, match=f"is truncated: {size - 10:,} of the {size:,} bytes") as caught:
        _fit(checkpoint=str(folder))
    assert "Save the checkpoint again (mitra_sklearn.save_model) or copy the folder" in str(caught.value)
    assert caught.value.path == folder / "model.safetensors"


def test_a_damaged_checksum_file_is_named_as_such(tmp_path):
    folder = make_tiny_checkpoint(tmp_path / "mine", "CLASSIFICATION")
    write_checksums(folder)
    (folder / "model.safetensors.sha256").write_text("0123 not a digest\n")
    with pytest.raises(CheckpointIntegrityError) as caught:
        _fit(checkpoint=str(folder))
    message = str(caught.value)
    assert f"{folder / 'model.safetensors.sha256'} holds '0123 not a digest" in message  # the checksum, not the weights
    assert "not a 64-hex-digit SHA-256" in message and "write_checksums" in message


def test_a_damaged_shipped_checkpoint_says_to_reinstall(tmp_path, monkeypatch):
    shipped = tmp_path / "checkpoints"
    shutil.copytree(checkpoint_module.SHIPPED_CHECKPOINTS_DIR, shipped)
    monkeypatch.setattr(checkpoint_module, "SHIPPED_CHECKPOINTS_DIR", shipped)
    weights = shipped / "mitra-small-classifier" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF  # bit rot inside a tensor: only its .sha256 can tell
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointIntegrityError) as caught:
        _fit()
    message = str(caught.value)
    assert "the shipped fallback 'mitra-small-classifier' is damaged" in message and str(weights) in message
    assert "its checksum file model.safetensors.sha256 says" in message
    assert "pip install --force-reinstall --no-deps mitra-sklearn" in message


# ---------------------------------------------------------------------------- 2. disks
def _model(seed: int = 0, dim: int = 16) -> MitraModel:
    torch.manual_seed(seed)
    return MitraModel(MitraConfig(dim=dim, dim_output=10, n_layers=1, n_heads=2, task="CLASSIFICATION"))


def test_save_on_a_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    folder = tmp_path / "ckpt"
    save_model(_model(0), folder)
    umask = os.umask(0o022)
    os.umask(umask)
    assert (folder / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask  # an ordinary file, not 0o600
    before = _folder_bytes(folder)
    full_disk(monkeypatch)
    with pytest.raises(CheckpointWriteError) as caught:
        save_model(_model(1), folder)
    assert caught.value.errno == errno.ENOSPC
    message = str(caught.value)
    assert f"Could not write {folder / 'model.safetensors'}: the disk is full" in message
    assert "MiB free there" in message
    assert "Nothing was replaced" in message
    assert _folder_bytes(folder) == before  # no temporary file left, the old checkpoint whole
    torch.testing.assert_close(load_model(folder).state_dict(), _model(0).state_dict())


@pytest.mark.parametrize("how", ["chmod", "injected"])
def test_save_into_a_read_only_folder_says_so(tmp_path, how):
    folder = tmp_path / "ckpt"
    save_model(_model(0), folder)
    before = _folder_bytes(folder)
    with read_only(folder, how), pytest.raises(CheckpointWriteError) as caught:
        save_model(_model(1), folder)
    assert f"{folder} is not writable" in str(caught.value) and "Write to a folder this user can write to" in str(
        caught.value)
    assert _folder_bytes(folder) == before


@pytest.mark.parametrize("how", ["chmod", "injected"])
def test_a_read_only_hub_cache_falls_back_and_says_why(hub_cache, monkeypatch, fresh_warnings, how):
    fake_online(monkeypatch.setattr, download_into_cache)
    with read_only(hub_cache, how):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            fitted = _fit()
        with pytest.raises(CheckpointNotFoundError, match=re.escape(f"the Hub cache {hub_cache} is not writable")):
            _fit(checkpoint=V1)
    assert fitted.checkpoint_ == "mitra-small-classifier"
    [message] = _messages(record, "checkpoint=None)")
    assert f"the Hub cache {hub_cache} is not writable" in message and "set HF_HUB_CACHE (or HF_HOME)" in message


_HOME_SCRIPT = """
import os, warnings
import numpy as np
from tests import _fault_injection as faults
from mitra_sklearn import MitraClassifier
if {injected}:
    faults.READ_ONLY.add(os.path.realpath(os.environ["HOME"]))
faults.fake_online(setattr, faults.download_into_cache)
X = np.random.RandomState(0).randn(40, 3)
with warnings.catch_warnings(record=True) as record:
    warnings.simplefilter("always")
    fitted = MitraClassifier(n_estimators=1).fit(X, (X[:, 0] > 0).astype(int))
print(fitted.checkpoint_)
print("\\n".join(str(w.message) for w in record))
"""


@pytest.mark.parametrize("how", ["chmod", "injected"])
def test_a_read_only_home_folder_falls_back_and_says_why(tmp_path, how):
    if how == "chmod" and IS_ROOT:
        pytest.skip(ROOT_SKIP)
    home = tmp_path / "home"
    home.mkdir()
    # The default Hub cache, under the home folder: none of the variables that move it.
    moved = ("HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "XDG_CACHE_HOME")
    env = {k: v for k, v in os.environ.items() if k not in moved}
    env.update(HOME=str(home), PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[1]), env.get("PYTHONPATH", "")]))
    script = _HOME_SCRIPT.format(injected=how == "injected")
    if how == "chmod":
        home.chmod(0o555)
    try:
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    finally:
        home.chmod(0o755)
    assert done.returncode == 0, done.stderr[-2000:]
    used, _, warned = done.stdout.partition("\n")
    assert used == "mitra-small-classifier"
    assert f"the Hub cache {home / '.cache' / 'huggingface' / 'hub'} is not writable" in warned


@pytest.mark.filterwarnings("ignore:MitraClassifier\\(checkpoint=None\\) uses the shipped")
@pytest.mark.parametrize("how", ["chmod", "injected"])
def test_a_read_only_package_folder_is_only_read(tmp_path, monkeypatch, how):
    shipped = tmp_path / "checkpoints"
    shutil.copytree(checkpoint_module.SHIPPED_CHECKPOINTS_DIR, shipped)
    monkeypatch.setattr(checkpoint_module, "SHIPPED_CHECKPOINTS_DIR", shipped)
    before = _folder_bytes(shipped)
    X, y = _data()
    with read_only(shipped, how):
        fitted = MitraClassifier(n_estimators=1, random_state=0).fit(X, y)
        again = pickle.loads(pickle.dumps(fitted))
        np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))
        with pytest.raises(CheckpointWriteError, match="is not writable"):
            write_checksums(shipped / "mitra-small-classifier")
    assert fitted.checkpoint_ == "mitra-small-classifier"
    assert _folder_bytes(shipped) == before


def _run_with_checkpoint(tmp_path: Path, step: int = 1) -> tuple[RunFolder, MitraModel, tuple]:
    run = RunFolder(tmp_path / "run")
    model = _model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    run.save(model, optimizer, scheduler, TrainingState(step=step), {"seed": 0}, keep=3)
    return run, model, (optimizer, scheduler)


def test_a_pretraining_save_on_a_full_disk_keeps_the_newest_checkpoint(tmp_path, monkeypatch):
    run, model, (optimizer, scheduler) = _run_with_checkpoint(tmp_path)
    before = _folder_bytes(run.path)
    full_disk(monkeypatch, after=2)  # the weights and config fit, the training state does not
    with pytest.raises(CheckpointWriteError) as caught:
        run.save(model, optimizer, scheduler, TrainingState(step=2), {"seed": 0}, keep=3)
    assert caught.value.errno == errno.ENOSPC
    message = str(caught.value)
    assert "Could not write the checkpoint of step 2" in message and "the disk is full" in message
    assert "its newest complete checkpoint is still step-0000001, and `resume` continues from there" in message
    assert run.latest_checkpoint().name == "step-0000001" and os.readlink(run.path / "latest").endswith("step-0000001")
    assert _folder_bytes(run.path) == before  # no .tmp-step folder, nothing else touched


def test_campaign_packing_on_a_full_disk_keeps_the_previous_state(tmp_path, monkeypatch):
    run, model, (optimizer, scheduler) = _run_with_checkpoint(tmp_path)
    campaign = tmp_path / "campaign"
    pack_campaign(run.path, campaign, max_mib=0.01)
    assert len(list((campaign / "state").glob("pack-*.safetensors"))) >= 2
    before = _folder_bytes(campaign)
    run.save(model, optimizer, scheduler, TrainingState(step=2), {"seed": 0}, keep=3)
    full_disk(monkeypatch, after=1)  # the second shard fails
    with pytest.raises(CheckpointWriteError, match="the campaign keeps its previous state"):
        pack_campaign(run.path, campaign, max_mib=0.01)
    assert _folder_bytes(campaign) == before and campaign_step(campaign) == 1
    assert not (campaign / ".state-new").exists()


def test_a_pack_over_an_older_one_that_fails_leaves_the_older_one_whole(tmp_path, monkeypatch):
    run, model, (optimizer, scheduler) = _run_with_checkpoint(tmp_path)
    out = tmp_path / "pack"
    run.pack(out, max_mib=0.01)
    before = _folder_bytes(out)
    run.save(model, optimizer, scheduler, TrainingState(step=2), {"seed": 0}, keep=3)
    write = checkpoint_module._write_bytes
    full_disk(monkeypatch, after=1)
    with pytest.raises(CheckpointWriteError, match="Nothing was replaced"):
        run.pack(out, max_mib=0.01)
    assert _folder_bytes(out) == before
    monkeypatch.setattr(checkpoint_module, "_write_bytes", write)
    restored = RunFolder(tmp_path / "restored").unpack(out)
    assert restored.name == "step-0000001"


def test_a_log_cut_short_by_a_full_disk_is_read_on_resume(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    run.log_path.write_text('{"step": 1, "loss": 0.5}\n{"step": 2, "loss": 0.4}\n{"step": 3, "lo')
    run.drop_log_after(2)
    assert [json.loads(line)["step"] for line in run.log_path.read_text().splitlines()] == [1, 2]


# ---------------------------------------------------------------------------- 3. other processes
_PAUSING_READER = """
import json, sys
from mitra_sklearn import checkpoint, load_model
from mitra_sklearn.checkpoint import checkpoint_info, resolve_checkpoint

real = getattr(checkpoint, {hook!r})
paused = []

def pause_once(path, *args, **kwargs):
    if not paused and str(path).endswith("model.safetensors"):
        paused.append(path)
        print("paused", flush=True)
        sys.stdin.readline()  # the other process saves the checkpoint meanwhile
    return real(path, *args, **kwargs)

setattr(checkpoint, {hook!r}, pause_once)
folder = {folder!r}
info = checkpoint_info(resolve_checkpoint(folder), folder, "test")
model = load_model(folder, use_cache=True)
print(json.dumps({{"sha256": info.sha256, "dim": model.config.dim,
                  "bias": model.final_layer.bias.tolist()}}), flush=True)
"""


def _read_while_another_process_saves(folder: Path, hook: str, save) -> dict:
    """Run a reader process that pauses inside ``hook`` once; ``save()`` meanwhile; its result."""
    script = _PAUSING_READER.format(hook=hook, folder=str(folder))
    reader = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "paused", reader.stderr.read()[-2000:]
        save()
        out, err = reader.communicate("go\n", timeout=300)
    finally:
        if reader.poll() is None:
            reader.kill()
    assert reader.returncode == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1])


def test_a_checkpoint_resaved_while_another_process_verifies_it_is_read_again(tmp_path):
    folder = tmp_path / "ckpt"
    save_model(_model(0), folder)
    write_checksums(folder)
    new = _model(1)

    def save():
        save_model(new, folder)
        write_checksums(folder)

    result = _read_while_another_process_saves(folder, "_sha256", save)
    # Not a false "corrupt" error from the old checksum paired with the new weights: the new version, whole.
    assert result["sha256"] == (folder / "model.safetensors.sha256").read_text().split()[0]
    np.testing.assert_allclose(result["bias"], new.final_layer.bias.tolist())


def test_config_and_weights_come_from_one_version_when_another_process_saves(tmp_path):
    folder = tmp_path / "ckpt"
    save_model(_model(0, dim=16), folder)
    result = _read_while_another_process_saves(folder, "_read_weights", lambda: save_model(_model(1, dim=32), folder))
    assert result["dim"] == 32  # the config read before the pause was read again with the new weights


def test_a_file_rewritten_in_place_with_the_same_size_and_mtime_is_read_anew(tmp_path):
    """The digest and model caches are not fooled by a rewrite that keeps size and mtime (one clock tick)."""
    folder = tmp_path / "ckpt"
    save_model(_model(0), folder)
    weights = folder / "model.safetensors"
    first = load_model(folder, use_cache=True)
    digest = checkpoint_module._sha256(weights)
    stat = weights.stat()
    replacement = tmp_path / "other"
    save_model(_model(1), replacement)
    data = (replacement / "model.safetensors").read_bytes()
    assert len(data) == stat.st_size
    with open(weights, "r+b") as handle:  # in place: same inode
        handle.write(data)
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as if within the same timestamp tick
    assert (weights.stat().st_size, weights.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    assert checkpoint_module._sha256(weights) == hashlib.sha256(data).hexdigest() != digest
    second = load_model(folder, use_cache=True)
    assert second is not first
    torch.testing.assert_close(second.state_dict(), _model(1).state_dict())
    torch.testing.assert_close(first.state_dict(), _model(0).state_dict())  # loaded weights are not the file's map


_LOCK_HOLDER = """
import sys
from pretraining.runfolder import RunFolder
RunFolder({folder!r}).lock()
print("locked", flush=True)
sys.stdin.readline()
"""


def _hold_lock(folder: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", _LOCK_HOLDER.format(folder=str(folder))], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_pretraining_run_in_the_same_folder_refuses(tmp_path):
    folder = tmp_path / "run"
    holder = _hold_lock(folder)
    try:
        with pytest.raises(RunFolderInUseError) as caught:
            train(preset("tiny", steps=1), folder, progress=False)
    finally:
        holder.communicate("done\n", timeout=60)
    message = str(caught.value)
    assert f"The run folder {folder} is in use by another pretraining run (process {holder.pid} on" in message
    assert "give this run another folder (--out)" in message
    assert sorted(p.name for p in folder.iterdir()) == [".lock"]  # refused before writing anything
    RunFolder(folder).lock()  # free again once the other run ended
    RunFolder(folder).unlock()


def test_the_command_line_refuses_a_folder_in_use_with_a_message(tmp_path):
    from pretraining.cli import main as cli_main

    folder = tmp_path / "run"
    holder = _hold_lock(folder)
    try:
        with pytest.raises(SystemExit) as caught:
            cli_main(["train", "--preset", "tiny", "--steps", "1", "--out", str(folder), "--no-progress"])
    finally:
        holder.communicate("done\n", timeout=60)
    assert str(caught.value).startswith(f"error: The run folder {folder} is in use by another pretraining run")


def test_a_killed_runs_lock_is_released(tmp_path):
    folder = tmp_path / "run"
    holder = _hold_lock(folder)
    with pytest.raises(RunFolderInUseError):
        RunFolder(folder).lock()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    holder.stdin.close()
    holder.stdout.close()
    RunFolder(folder).lock()  # the kernel let go of a killed process's lock
    RunFolder(folder).unlock()


# ---------------------------------------------------------------------------- 4. time bounds on big tables
@pytest.fixture
def no_model_work(monkeypatch):
    """Predictions without running the model (zeros): the warnings come before any work."""
    def predict(self, x_support, y_support, x_query, cache=None, progress=None, embeddings=False):
        return np.zeros((len(x_query), self.model.config.dim_output), dtype=np.float32)

    monkeypatch.setattr(InferenceRunner, "predict", predict)


@pytest.mark.parametrize("selection, rows, advice", [
    ("nearest", 30_000, "support_selection='random' (one support pass per member instead of one per neighbourhood)"),
    ("random", 30_000, "a smaller max_support_rows (time grows with its square)"),
])
def test_a_call_estimated_to_take_long_warns_up_front_with_what_to_change(selection, rows, advice, no_model_work,
                                                                          fresh_warnings):
    X, y = _data(rows + 1000, n_features=8)
    params = dict(support_selection=selection, max_support_rows=8192 if selection == "nearest" else 30_000)
    fitted = MitraClassifier("mitra-small-classifier", random_state=0, n_jobs=2, **params).fit(X[:rows], y[:rows])
    with pytest.warns(UserWarning, match="on the CPU with 2 thread") as record:
        fitted.predict_proba(X[rows:])
    [message] = _messages(record, "MitraClassifier predicts 1,000 rows")
    assert advice in message and "fewer members (n_estimators)" in message and "device='cuda'" in message
    minutes = float(message.split(": about ")[1].split(" min")[0])
    assert minutes >= 1  # 4 members x 8,192 support rows (x 8 neighbourhoods for 'nearest')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted.predict_proba(X[rows:])  # once per process


def test_a_small_table_gets_no_time_warning(no_model_work, fresh_warnings):
    X, y = _data(2000, n_features=8)
    fitted = MitraClassifier("mitra-small-classifier", random_state=0, support_selection="nearest",
                             max_support_rows=500).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted.predict_proba(X[:100])


def test_nearest_with_support_cache_fit_encodes_each_neighbourhood_once_in_fit(monkeypatch):
    """Predict then runs only the query rows, as a cached random subsample does (no support pass)."""
    X, y = _data(900, n_features=4)
    # float32: under bf16 autocast a row moves by ~1e-3 with its batch's shape (cached neighbourhoods
    # share one batch).
    params = dict(n_estimators=2, random_state=0, support_selection="nearest", max_support_rows=200,
                  inference_precision="float32")
    per_call = MitraClassifier("mitra-small-classifier", **params).fit(X[:800], y[:800])
    encoded, passes = [], []
    real_encode, real_by_layer = InferenceRunner.encode, InferenceRunner._predict_by_layer
    monkeypatch.setattr(InferenceRunner, "encode", lambda self, *a: encoded.append(1) or real_encode(self, *a))
    monkeypatch.setattr(InferenceRunner, "_predict_by_layer",
                        lambda self, *a: passes.append(1) or real_by_layer(self, *a))
    cached = MitraClassifier("mitra-small-classifier", support_cache="fit", **params).fit(X[:800], y[:800])
    n_neighbourhoods = len(cached.local_support_.centres)
    assert len(encoded) == 2 * n_neighbourhoods and not passes
    proba = cached.predict_proba(X[800:])
    assert len(encoded) == 2 * n_neighbourhoods and not passes  # predict: queries against the cached sets only
    np.testing.assert_allclose(proba, per_call.predict_proba(X[800:]), atol=1e-6)


def test_checkpoint_info_verifies_the_files_it_pins(tmp_path):
    folder = make_tiny_checkpoint(tmp_path / "mine", "CLASSIFICATION")
    _truncate(folder / "model.safetensors", keep=5)
    with pytest.raises(CheckpointIntegrityError, match="not even the 8-byte header length"):
        checkpoint_info(resolve_checkpoint(folder), str(folder), "test")
