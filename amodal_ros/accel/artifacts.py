"""Content-keyed on-disk cache of built artifacts (ONNX files, TensorRT engines).

An artifact is rebuilt when anything its key names changes (model weights, the code that
traces the model, input shapes, precision, TensorRT version, GPU), and never when nothing does:
the key is a hash of all of them, and the file is written atomically and durably (flushed to
disk before its rename), so a build killed halfway, or a power cut, leaves no half file, and
processes that build the same artifact at once all end with it. What a build killed outright
(SIGKILL, out of memory) left in its staging name is removed by the next build on that machine.
The sidecar records the hash of every file built, so a cached artifact that does not load is
told apart: changed on disk since (a disk error), or without a readable record to tell, is
built again; as built, the cause is the machine (GPU memory, drivers), said as such, and the
artifact is kept.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import shutil
import stat
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from amodal_ros.core.errors import BackendUnavailableError
from amodal_ros.core.staging import (
    remove_dead_partials,
    remove_partial,
    special_file,
    stage_name,
)

log = logging.getLogger("amodal_ros.accel")

DEFAULT_CACHE = Path("~/.cache/amodal_ros/engines")


def cache_dir(configured: str = "") -> Path:
    """The configured folder, else $AMODAL_ROS_ENGINE_CACHE, else ~/.cache/amodal_ros/engines."""
    folder = configured or os.environ.get("AMODAL_ROS_ENGINE_CACHE", "") or str(DEFAULT_CACHE)
    return Path(folder).expanduser()


def model_hash(module: torch.nn.Module) -> str:
    """Hash of a model's config (`public_items`: the same in every process) and weights
    (names, shapes, dtypes, values)."""
    h = hashlib.sha256()
    config = getattr(module, "config", None)
    if config is not None:  # a diffusers FrozenDict or a transformers PretrainedConfig
        plain = public_items(config.to_dict() if hasattr(config, "to_dict") else dict(config))
        h.update(json.dumps(_plain(plain), sort_keys=True, default=str).encode())
    for name, tensor in sorted(module.state_dict().items()):
        h.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        h.update(tensor.detach().contiguous().cpu().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def code_hash(model: torch.nn.Module) -> str:
    """Hash of what traces `model`'s graph besides its weights: the source of its class's
    module and of the export code, and the diffusers and transformers versions, so a code
    update that changes a forward rebuilds the artifacts traced from the old one."""
    import diffusers
    import transformers

    from amodal_ros.accel import onnx_export

    h = hashlib.sha256(f"{diffusers.__version__}:{transformers.__version__}".encode())
    for module in (sys.modules[type(model).__module__], onnx_export):
        h.update(Path(inspect.getfile(module)).read_bytes())
    return h.hexdigest()


def public_items(config: dict) -> dict:
    """A model config without the libraries' bookkeeping, fit to hash: diffusers' `_` keys
    (`_use_default_values` is a set listed in a per-process order) and transformers' version
    (a pin bump refused a carried run's resume; `code_hash` holds the versions an artifact
    needs)."""
    return {
        k: v
        for k, v in config.items()
        if not str(k).startswith("_") and k != "transformers_version"
    }


def artifact_key(**parts) -> str:
    """Stable hash of named key parts (strings, numbers, tuples, dicts)."""
    data = json.dumps(_plain(parts), sort_keys=True, default=str).encode()
    return hashlib.sha256(data).hexdigest()[:20]


BACKEND_REMEDY = "choose another backend (unet_backend / depth_backend: eager)"


class ArtifactLoadError(BackendUnavailableError):
    """A cached artifact that its runtime could not load: damaged on disk, or a machine
    problem (out of GPU memory); `ArtifactCache.load` tells them apart."""


class ArtifactCache:
    """Files named by key under one folder, built on a miss by a caller-given function."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.built = 0  # builds done by this instance (a hit builds nothing)

    def trusted_folder(self) -> Path:
        """The folder, made (only its owner may write) and checked: what it holds is run
        (TensorRT engines, Inductor's Python kernels), and anyone who can write there can run
        code as this process. One another user owns is refused, and so is a shared one (sticky,
        as /tmp: closing it would break other programs); one of ours that others may write
        into (made under umask 002 before this check) loses that write permission."""
        if self.folder.exists() and not self.folder.is_dir():
            raise BackendUnavailableError(
                f"engine cache {self.folder} is a file: set engine_cache (or "
                "$AMODAL_ROS_ENGINE_CACHE) to a folder"
            )
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = self.folder.stat()
        if st.st_uid != os.geteuid():
            raise BackendUnavailableError(
                f"engine cache {self.folder} belongs to user {st.st_uid}, not this process's "
                f"{os.geteuid()}: its files are code this process would run; set engine_cache "
                "(or $AMODAL_ROS_ENGINE_CACHE) to a folder of your own"
            )
        if st.st_mode & 0o022 and st.st_mode & stat.S_ISVTX:  # /tmp, /dev/shm: not ours to close
            raise BackendUnavailableError(
                f"engine cache {self.folder} is a shared folder (mode "
                f"{stat.S_IMODE(st.st_mode):o}, others may write into it): its files are code "
                "this process would run; set engine_cache (or $AMODAL_ROS_ENGINE_CACHE) to a "
                f"folder of your own, e.g. {self.folder / 'amodal_ros_engines'}"
            )
        if st.st_mode & 0o022:
            mode = stat.S_IMODE(st.st_mode)  # setgid kept
            self.folder.chmod(mode & ~0o022)
            log.warning(
                "engine cache %s was writable by other users (mode %o): made it %o, since its "
                "files are code this process runs (check that nobody else put files there)",
                self.folder,
                mode,
                mode & ~0o022,
            )
        return self.folder

    def path(self, name: str, key: str, suffix: str) -> Path:
        """Where the artifact `name` with `key` lives in the cache (it may not exist yet)."""
        return self.folder / f"{name}-{key}{suffix}"

    def get_or_build(
        self, name: str, key: str, suffix: str, build: Callable[[Path], None], meta: dict
    ) -> Path:
        """Path of the artifact; `build(tmp_path)` writes it (a file, or a folder for ONNX
        models with external weights) when it is not cached yet."""
        self.trusted_folder()
        target = self.path(name, key, suffix)
        if target.exists() and _unopenable(target):
            log.warning("%s holds no plain files (a FIFO?): removed, building it again", target)
            remove_partial(target)
            remove_partial(_sidecar(target))
        if target.exists():
            log.info("using cached %s", target)
            return target
        self._remove_dead_builds()
        tmp = self.folder / stage_name(target)
        sidecar = _sidecar(target)
        staged = sidecar.with_name(stage_name(sidecar))
        try:
            build(tmp)
            record = {"key": key, **meta, "files": _file_hashes(tmp)}
            staged.write_text(json.dumps(_plain(record), indent=2, default=str))
            # on disk before the renames: a power cut leaves no half file under the name
            _fsync(*tmp.rglob("*"), tmp, staged)  # (an ONNX folder's files, or the file)
            try:
                os.replace(tmp, target)
            except OSError:  # a folder another process finished first (a file just replaces)
                if not target.exists():
                    raise
                log.info("using %s, built by another process meanwhile", target)
                return target
            os.replace(staged, sidecar)  # at once after it: a reader finds both, or neither
            _fsync(self.folder)  # the renames themselves
        finally:
            if tmp.is_dir():
                shutil.rmtree(tmp)
            tmp.unlink(missing_ok=True)
            staged.unlink(missing_ok=True)
        self.built += 1
        log.info("built %s", target)
        return target

    def load(self, name: str, key: str, suffix: str, build, meta: dict, load: Callable):
        """`load(path)` of the artifact, built on a miss (`get_or_build`). A cached one that
        `load` cannot load (ArtifactLoadError) is removed and built again, once, unless its
        files are as recorded at their build; then the error is the machine's and is raised."""
        built = self.built
        target = self.get_or_build(name, key, suffix, build, meta)
        try:
            return load(target)
        except ArtifactLoadError as err:
            if self.built != built:  # just built: a rebuild would not help
                raise BackendUnavailableError(
                    f"{err}; it was just built, so the cause is this machine's runtime or "
                    f"device (out of memory?): {BACKEND_REMEDY}"
                ) from err
            if _intact(target):
                raise BackendUnavailableError(
                    f"{err}; the cached file is as built (its record says so), so the cause "
                    "is likely this machine: a runtime older than the one that built it, or a "
                    f"device out of memory; update the runtime, free memory, or {BACKEND_REMEDY} "
                    f"(delete {target} to build it again)"
                ) from err
            log.warning("%s: removed from the cache, building it again", err)
            remove_partial(target)  # a file or an ONNX folder
            self.get_or_build(name, key, suffix, build, meta)
            return load(target)

    def get_intact(
        self, name: str, key: str, suffix: str, build: Callable[[Path], None], meta: dict
    ) -> Path:
        """`get_or_build`, built again unless its files are as recorded at their build: for a
        reader that cannot tell a damaged file from a bad one (TensorRT's ONNX parser)."""
        target = self.get_or_build(name, key, suffix, build, meta)
        if not _intact(target):
            log.warning("%s is not as built (or has no record of it): building it again", target)
            remove_partial(target)
            self.get_or_build(name, key, suffix, build, meta)
        return target

    def _remove_dead_builds(self) -> None:
        """Remove the staging files of builds on this machine whose process is gone: a killed
        build never reached its cleanup, and a full-size UNet's export is gigabytes. Live
        builds, and other machines' on a shared cache, are left alone."""
        for partial in remove_dead_partials(self.folder):
            log.info("removed %s, left by a build that was killed", partial)


def _sidecar(target: Path) -> Path:
    return target.with_name(target.name + ".json")


def _unopenable(target: Path) -> bool:
    """Whether the artifact or its record is, or holds, something neither a file nor a folder
    (a FIFO, a device): a build writes none, and opening one to load or hash it blocks."""
    paths = [target, _sidecar(target)]
    if target.is_dir() and not target.is_symlink():
        paths += target.rglob("*")
    return any(special_file(p) for p in paths)


def _file_hashes(target: Path) -> dict[str, str]:
    """sha256 of the artifact's files by path relative to it (a file, or an ONNX folder)."""
    files = sorted(p for p in target.rglob("*") if p.is_file()) if target.is_dir() else [target]
    return {str(p.relative_to(target)) if p != target else "": file_sha256(p) for p in files}


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in chunks (exports are gigabytes)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


def _intact(target: Path) -> bool:
    """Whether the artifact's files are those its build recorded. Without a readable record
    (a cut between the artifact's rename and its record's, a damaged disk, a copied cache)
    nothing says so, and it is built again."""
    try:
        recorded = json.loads(_sidecar(target).read_text()).get("files")
    except (OSError, ValueError, AttributeError):
        return False
    return recorded is not None and recorded == _file_hashes(target)


def _fsync(*paths: Path) -> None:
    """Flush files' contents, and folders' entries, from the page cache to the disk."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
