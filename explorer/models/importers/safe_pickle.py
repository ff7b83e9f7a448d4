"""Reading a whole-model pickle (``torch.save(model)``) without executing anything from it.

Three steps, each refusing by name what it does not expect:

1. **List** every global the pickle references, statically (nothing is unpickled):
   ``torch.serialization.get_unsafe_globals_in_checkpoint`` for the zip format (torch ≥ 1.6), a
   ``pickletools.genops`` scan for the legacy non-zip format (magic number, protocol and system-info
   pickles, then the model pickle, then the storage keys and raw storage bytes). Every global must be
   in :data:`TENSOR_GLOBALS` or among the class names the caller allows; every opcode must be one of
   the protocol-2 instructions PyTorch's weights-only unpickler implements. Anything else is refused
   *before* loading, naming the global or instruction.
2. **Load** with ``torch.load(weights_only=True, map_location="cpu")`` inside
   ``torch.serialization.safe_globals``, where each allowed class name maps to an inert stand-in
   (:class:`InertObject`): a class that refuses constructor arguments, never calls anything, and only
   stores the state the pickle gives it. No name ever maps to a function.
3. **Walk** the stand-ins' stored state for ``_parameters``, ``_buffers``, ``_modules`` and plain
   attributes, into a :class:`PickledModule` tree.

The legacy format stores each ``nn.Module`` class the first time it appears as a persistent id
``("module", cls, source_file, source)`` (the class's source code, as text), which PyTorch's weights-only
unpickler refuses. Before loading, the stream is rewritten so each such id becomes a call of
:func:`_container_class` (which returns ``cls`` if it is one of the stand-ins, else refuses); the rewritten
stream is still read by the weights-only unpickler, so a mistake in the rewrite can only make the load fail,
never run code. The file itself may not name that helper (step 1 refuses it like any other unknown name).
"""

from __future__ import annotations

import io
import pickle
import pickletools
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch._utils import IMPORT_MAPPING, NAME_MAPPING

from explorer.errors import CheckpointError

MAX_CHECKPOINT_BYTES = 4 * 1024**3
MAX_PICKLE_BYTES = 256 * 1024**2  # the object graph alone (tensors are stored beside it)
LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001
MAX_DEPTH = 64
MAX_MODULES = 100_000

# Globals a checkpoint's tensors need (PyTorch allows all of them in weights-only loads by default).
TENSOR_GLOBALS = frozenset(
    {
        "collections.OrderedDict",
        "builtins.set",
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch.Size",
        "torch.device",
        "torch.serialization._get_layout",
        "_codecs.encode",
        *(
            f"torch.{name}Storage"
            for name in (
                "Float",
                "Double",
                "Half",
                "BFloat16",
                "Long",
                "Int",
                "Short",
                "Char",
                "Byte",
                "Bool",
            )
        ),
    }
)

# The torch.nn classes an original ProtoPNet (and its three backbones) pickles, by full name.
TORCH_MODULE_CLASSES = (
    "torch.nn.modules.conv.Conv2d",
    "torch.nn.modules.batchnorm.BatchNorm2d",
    "torch.nn.modules.activation.ReLU",
    "torch.nn.modules.activation.Sigmoid",
    "torch.nn.modules.pooling.MaxPool2d",
    "torch.nn.modules.pooling.AvgPool2d",
    "torch.nn.modules.container.Sequential",
    "torch.nn.modules.linear.Linear",
    "torch.nn.modules.dropout.Dropout",
    "torch.nn.parallel.data_parallel.DataParallel",
    # torch < 1.2 stored a backend in every module's ``_backend``, pickled as a call of this function
    # with no arguments; here the name, like every other, maps to an inert class
    "torch.nn.backends.thnn._get_thnn_function_backend",
)

# Protocol-2 instructions PyTorch's weights-only unpickler implements; nothing else is accepted.
ALLOWED_OPCODES = frozenset(
    {
        "PROTO", "STOP", "GLOBAL", "NEWOBJ", "REDUCE", "BUILD", "APPEND", "APPENDS", "SETITEM",
        "SETITEMS", "MARK", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "NONE", "NEWFALSE", "NEWTRUE",
        "EMPTY_TUPLE", "EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET", "BINPERSID", "BININT", "BININT1",
        "BININT2", "BINFLOAT", "BINGET", "LONG_BINGET", "BINPUT", "LONG_BINPUT", "BINUNICODE",
        "SHORT_BINSTRING", "LONG1",
    }
)  # fmt: skip
_CONTAINER_HELPER = ("explorer.models.importers.safe_pickle", "_container_class")


class InertObject:
    """Base of the stand-ins for allowed classes: created without arguments, holds its pickled state.

    It defines no behaviour: no ``__call__``, no ``__getattr__``, no ``__init__`` that takes arguments.
    """

    __slots__ = ("pickled_state",)
    qualified_name: ClassVar[str] = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> InertObject:
        if args or kwargs:
            raise pickle.UnpicklingError(
                f"the checkpoint constructs {cls.qualified_name} with arguments, which a saved "
                "module never does"
            )
        instance = object.__new__(cls)
        instance.pickled_state = None
        return instance

    def __setstate__(self, state: Any) -> None:
        if self.pickled_state is not None:
            raise pickle.UnpicklingError(f"the checkpoint sets {self.qualified_name}'s state twice")
        if isinstance(state, tuple) and len(state) == 2 and state[1] is None:
            state = state[0]
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise pickle.UnpicklingError(
                f"the checkpoint gives {self.qualified_name} a state that is not a dict of attributes"
            )
        self.pickled_state = state

    def __repr__(self) -> str:
        return f"<inert {self.qualified_name}>"


def _stand_in(full_name: str) -> type[InertObject]:
    short = full_name.rsplit(".", 1)[-1]
    return type(short, (InertObject,), {"__slots__": (), "qualified_name": full_name})


_STAND_INS: dict[str, type[InertObject]] = {}


def stand_in(full_name: str) -> type[InertObject]:
    """The inert stand-in class for ``full_name`` (one class per name, created once)."""
    if full_name not in _STAND_INS:
        _STAND_INS[full_name] = _stand_in(full_name)
    return _STAND_INS[full_name]


def _container_class(tag: Any, cls: Any, source_file: Any = None, source: Any = None) -> Any:
    """What a legacy ``("module", cls, file, source)`` persistent id resolves to: ``cls`` itself, when it
    is a stand-in (the source text is ignored, never compiled)."""
    if tag != "module" or not (isinstance(cls, type) and issubclass(cls, InertObject)):
        raise pickle.UnpicklingError("a legacy module reference does not name an allowed class")
    return cls


@dataclass
class PickledModule:
    """One module of the pickled graph, as data.

    Attributes:
        class_name: the pickled class's full name (``resnet_features.BasicBlock``).
        parameters: name → tensor (``None`` for an absent one, e.g. a conv without bias).
        buffers: name → tensor or ``None``.
        children: name → sub-module (``None`` entries are dropped).
        attributes: every other attribute, as the pickle stored it (plain values, tensors, or a
            stand-in class for an attribute that held a class).
    """

    class_name: str
    parameters: dict[str, torch.Tensor | None] = field(default_factory=dict)
    buffers: dict[str, torch.Tensor | None] = field(default_factory=dict)
    children: dict[str, PickledModule] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def short_name(self) -> str:
        return self.class_name.rsplit(".", 1)[-1]

    def child(self, name: str, where: str) -> PickledModule:
        if name not in self.children:
            raise CheckpointError(f"{where}: the pickled {self.short_name} has no module '{name}'")
        return self.children[name]

    def state(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """``state_dict()``-style flat tensors (parameters and buffers, ``None`` left out)."""
        out: dict[str, torch.Tensor] = {}
        for name, tensor in (*self.parameters.items(), *self.buffers.items()):
            if tensor is not None:
                out[prefix + name] = tensor
        for name, child in self.children.items():
            out.update(child.state(f"{prefix}{name}."))
        return out

    def modules(self, prefix: str = "") -> Iterable[tuple[str, PickledModule]]:
        """Every module with its dotted path (``""`` for this one), depth first."""
        yield prefix.rstrip("."), self
        for name, child in self.children.items():
            yield from child.modules(f"{prefix}{name}.")


# --- step 1: what the file references -------------------------------------------------------------
def is_zip_checkpoint(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


def _zip_pickle(path: Path, where: str) -> bytes:
    """The ``data.pkl`` record of a zip checkpoint."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(names) != 1:
                if any(n.endswith("constants.pkl") for n in archive.namelist()):
                    raise CheckpointError(
                        f"{where} is a TorchScript archive, not a torch.save file"
                    )
                raise CheckpointError(f"{where} is a zip file but not a torch.save checkpoint")
            if archive.getinfo(names[0]).file_size > MAX_PICKLE_BYTES:
                raise CheckpointError(f"{where}: its pickle is larger than 256 MiB")
            return archive.read(names[0])
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise CheckpointError(f"{where} is truncated or corrupt ({error})") from None


def _scan(stream: io.BytesIO, where: str) -> tuple[list[tuple[Any, Any, int]], int]:
    """Every instruction of the pickle starting at the stream's position, and where it ends."""
    ops: list[tuple[Any, Any, int]] = []
    try:
        for opcode, arg, position in pickletools.genops(stream):
            ops.append((opcode, arg, position))
    except Exception as error:  # a parser only: whatever it chokes on is a damaged file
        raise CheckpointError(f"{where} is truncated or corrupt ({error})") from None
    if not ops or ops[-1][0].name != "STOP":
        raise CheckpointError(f"{where} is truncated or corrupt (a pickle does not end)")
    return ops, stream.tell()


def _check_ops(ops: list[tuple[Any, Any, int]], where: str) -> set[str]:
    """The globals an instruction list references; refuses instructions a checkpoint never needs."""
    found: set[str] = set()
    for opcode, arg, _ in ops:
        if opcode.name not in ALLOWED_OPCODES:
            raise CheckpointError(
                f"{where}: the pickle uses the instruction {opcode.name}, which a torch.save "
                "checkpoint never needs; refusing to load it"
            )
        if opcode.name == "GLOBAL":
            found.add(_resolved_name(*str(arg).split(" ", 1)))
    return found


def _resolved_name(module: str, name: str) -> str:
    """The name PyTorch's unpickler looks a global up by (protocol 2 writes Python 2 names such as
    ``__builtin__.set``, which it maps as the standard unpickler does)."""
    if (module, name) in NAME_MAPPING:
        module, name = NAME_MAPPING[(module, name)]
    elif module in IMPORT_MAPPING:
        module = IMPORT_MAPPING[module]
    return f"{module}.{name}"


class _LiteralUnpickler(pickle.Unpickler):
    """Unpickles plain literals only: any global or persistent id is refused (so nothing can be called)."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"unexpected global {module}.{name} in a header pickle")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("unexpected persistent id in a header pickle")


def _literal(stream: io.BytesIO, where: str) -> Any:
    start = stream.tell()
    ops, end = _scan(stream, where)
    if _check_ops(ops, where) or any(op.name == "BINPERSID" for op, _, _ in ops):
        raise CheckpointError(f"{where}: a header pickle of the legacy format holds objects")
    stream.seek(start)
    try:
        value = _LiteralUnpickler(stream).load()
    except Exception as error:  # literals only (no global can be resolved): a damaged file
        raise CheckpointError(f"{where} is truncated or corrupt ({error})") from None
    stream.seek(end)
    return value


@dataclass(frozen=True)
class _Legacy:
    """A legacy-format file, parsed: its bytes, where the model pickle lies, and its instructions."""

    data: bytes
    start: int
    end: int
    ops: list[tuple[Any, Any, int]]


def _parse_legacy(data: bytes, where: str) -> _Legacy:
    stream = io.BytesIO(data)
    magic = _literal(stream, where)
    if magic != LEGACY_MAGIC_NUMBER:
        raise CheckpointError(f"{where} is neither a zip nor a legacy torch.save checkpoint")
    if _literal(stream, where) != LEGACY_PROTOCOL_VERSION:
        raise CheckpointError(f"{where}: unsupported legacy checkpoint protocol version")
    info = _literal(stream, where)
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise CheckpointError(f"{where}: the legacy checkpoint was written on a big-endian machine")
    start = stream.tell()
    ops, end = _scan(stream, where)
    keys = _literal(stream, where)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise CheckpointError(f"{where} is truncated or corrupt (no storage keys)")
    return _Legacy(data, start, end, ops)


def referenced_globals(path: Path, where: str) -> set[str]:
    """Every global the checkpoint's pickle references, listed without unpickling anything."""
    if is_zip_checkpoint(path):
        scanned = _check_ops(_scan(io.BytesIO(_zip_pickle(path, where)), where)[0], where)
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        except (RuntimeError, ValueError, OSError, EOFError, pickle.UnpicklingError) as error:
            raise CheckpointError(f"{where} is truncated or corrupt ({error})") from None
        return set(unsafe) | scanned
    return _check_ops(_parse_legacy(_read(path, where), where).ops, where)


def _read(path: Path, where: str) -> bytes:
    if path.stat().st_size > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"{where} is larger than 4 GiB")
    return path.read_bytes()


def check_globals(found: set[str], allowed_classes: Iterable[str], where: str) -> None:
    """Refuses, by name, any global that is neither a tensor global nor an allowed class."""
    allowed = set(allowed_classes) | TENSOR_GLOBALS
    unexpected = sorted(found - allowed)
    if unexpected:
        shown = ", ".join(unexpected[:5]) + (" ..." if len(unexpected) > 5 else "")
        raise CheckpointError(
            f"{where} references {shown}, which this checkpoint format never contains; "
            "refusing to load it (nothing from the file was run)"
        )


# --- step 2: the load ------------------------------------------------------------------------------
def _rewrite_legacy(legacy: _Legacy) -> bytes:
    """The legacy file with each ``("module", cls, file, source)`` persistent id turned into a call of
    :func:`_container_class` (see the module docstring)."""
    inserts: list[int] = []  # byte offsets where the helper's GLOBAL goes (before the id's MARK)
    replaces: list[int] = []  # byte offsets of the BINPERSID instructions that become REDUCE
    stack: list[dict[str, Any]] = []
    memo: dict[int, Any] = {}

    def pop_mark() -> tuple[int, list[dict[str, Any]]]:
        items: list[dict[str, Any]] = []
        while stack and not stack[-1].get("mark"):
            items.append(stack.pop())
        if not stack:
            raise CheckpointError("the legacy model pickle is malformed (unbalanced MARK)")
        mark = stack.pop()
        return mark["start"], items[::-1]

    pushers = {
        "GLOBAL", "NONE", "NEWFALSE", "NEWTRUE", "EMPTY_TUPLE", "EMPTY_LIST", "EMPTY_DICT",
        "EMPTY_SET", "BININT", "BININT1", "BININT2", "BINFLOAT", "LONG1",
    }  # fmt: skip
    try:
        for opcode, arg, position in legacy.ops:
            name = opcode.name
            start = position  # genops reports offsets in the whole stream
            if name in pushers:
                stack.append({"start": start})
            elif name in ("BINUNICODE", "SHORT_BINSTRING"):
                stack.append({"start": start, "value": arg})
            elif name in ("BINGET", "LONG_BINGET"):
                stack.append({"start": start, "value": memo.get(arg)})
            elif name in ("BINPUT", "LONG_BINPUT"):
                memo[arg] = stack[-1].get("value")
            elif name == "MARK":
                stack.append({"start": start, "mark": True})
            elif name == "TUPLE":
                mark_start, items = pop_mark()
                stack.append({"start": mark_start, "items": items})
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                n = int(name[-1])
                items = stack[-n:]
                del stack[-n:]
                stack.append({"start": items[0]["start"], "items": items})
            elif name in ("NEWOBJ", "REDUCE"):
                stack.pop()
                stack[-1] = {"start": stack[-1]["start"]}
            elif name in ("BUILD", "APPEND"):
                stack.pop()
            elif name == "SETITEM":
                del stack[-2:]
            elif name in ("APPENDS", "SETITEMS"):
                pop_mark()
            elif name == "BINPERSID":
                pid = stack.pop()
                items = pid.get("items") or []
                if len(items) == 4 and items[0].get("value") == "module":
                    inserts.append(pid["start"])
                    replaces.append(start)
                stack.append({"start": pid["start"]})
    except IndexError:
        raise CheckpointError("the legacy model pickle is malformed (stack underflow)") from None
    helper = f"c{_CONTAINER_HELPER[0]}\n{_CONTAINER_HELPER[1]}\n".encode()
    data = bytearray(legacy.data)
    for offset in replaces:
        data[offset : offset + 1] = pickle.REDUCE
    for offset in sorted(inserts, reverse=True):
        data[offset:offset] = helper
    return bytes(data)


def load_checkpoint(path: Path, allowed_classes: Iterable[str], where: str) -> Any:
    """Checks the globals, then loads the file weights-only with inert stand-ins for the allowed
    classes. Returns the unpickled object (stand-ins, tensors, plain containers).

    Raises:
        CheckpointError: an unexpected global or instruction, a truncated or corrupt file.
    """
    allowed = tuple(allowed_classes)
    safe = [(stand_in(name), name) for name in allowed]
    if is_zip_checkpoint(path):
        check_globals(referenced_globals(path, where), allowed, where)
        source: Any = str(path)
    else:
        legacy = _parse_legacy(_read(path, where), where)
        check_globals(_check_ops(legacy.ops, where), allowed, where)
        source = io.BytesIO(_rewrite_legacy(legacy))
        safe.append((_container_class, ".".join(_CONTAINER_HELPER)))
    try:
        with torch.serialization.safe_globals(safe):
            return torch.load(source, weights_only=True, map_location="cpu")
    except CheckpointError:
        raise
    except Exception as error:  # the weights-only unpickler refused it, or the file is damaged
        raise CheckpointError(f"{where} could not be read safely ({_reason(error)})") from None


def _reason(error: BaseException) -> str:
    """The one line of a (weights-only) load error that says what was refused."""
    lines = [line.strip() for line in str(error).splitlines()]
    for i, line in enumerate(lines):
        if "WeightsUnpickler error:" in line:
            rest = line.split("WeightsUnpickler error:", 1)[1].strip()
            following = next((m for m in lines[i + 1 :] if m), "")
            return rest or following or type(error).__name__
    return next((m for m in lines if m), type(error).__name__)


# --- step 3: the graph ------------------------------------------------------------------------------
def module_tree(obj: Any, where: str) -> PickledModule:
    """Turns a loaded stand-in (a pickled ``nn.Module``) into a :class:`PickledModule` tree.

    Raises:
        CheckpointError: the graph is not a tree of modules (cycles, wrong containers, too deep).
    """
    seen: set[int] = set()
    count = 0

    def tensors(state: dict[str, Any], key: str, path: str) -> dict[str, torch.Tensor | None]:
        value = state.get(key, {})
        if not isinstance(value, dict):
            raise CheckpointError(f"{where}: {path or 'the model'}.{key} is not a dict")
        out: dict[str, torch.Tensor | None] = {}
        for name, tensor in value.items():
            if tensor is not None and not isinstance(tensor, torch.Tensor):
                raise CheckpointError(f"{where}: {path}{name} is not a tensor")
            out[name] = None if tensor is None else tensor.detach()
        return out

    def walk(node: Any, path: str, depth: int) -> PickledModule:
        nonlocal count
        if not isinstance(node, InertObject) or node.pickled_state is None:
            raise CheckpointError(f"{where}: {path or 'the top object'} is not a saved module")
        if id(node) in seen:
            raise CheckpointError(f"{where}: the module graph is not a tree (at {path})")
        seen.add(id(node))
        count += 1
        if depth > MAX_DEPTH or count > MAX_MODULES:
            raise CheckpointError(f"{where}: the module graph is too deep or too large")
        state = node.pickled_state
        children_state = state.get("_modules", {})
        if not isinstance(children_state, dict):
            raise CheckpointError(f"{where}: {path or 'the model'}._modules is not a dict")
        children = {
            name: walk(child, f"{path}{name}.", depth + 1)
            for name, child in children_state.items()
            if child is not None
        }
        skip = {"_parameters", "_buffers", "_modules"}
        transient = state.get("_non_persistent_buffers_set") or set()
        buffers = tensors(state, "_buffers", path)
        if isinstance(transient, set):  # not in a state_dict, so not in the model's tensors either
            buffers = {k: v for k, v in buffers.items() if k not in transient}
        return PickledModule(
            class_name=type(node).qualified_name,
            parameters=tensors(state, "_parameters", path),
            buffers=buffers,
            children=children,
            attributes={k: v for k, v in state.items() if k not in skip},
        )

    return walk(obj, "", 0)
