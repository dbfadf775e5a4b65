"""One measurement per reader, meant to run in a fresh process of its own.

Each ``measure_*`` function imports what its reader needs, resets the process's peak
RSS (``/proc/self/clear_refs``), reads everything, and returns a :class:`Result`: the
number of scalars it holds, the seconds it took, and the growth of the peak RSS over
the RSS after the imports, and the growth still held at the end with the result alive.
``measure_rustboard`` runs TensorBoard's Rust data server
as a process of its own and reports that process's peak RSS.
"""

from __future__ import annotations

import gc
import statistics
import subprocess
import tempfile
import time
from dataclasses import asdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Result:
    """What one reader achieved on one data set.

    Attributes:
        scalars: the points it holds at the end.
        seconds: wall time of the read.
        peak_bytes: peak RSS during the read, over the RSS before it.
        held_bytes: RSS after the read, with the result still alive, over the same.
        result_bytes: the size of the result itself where it is known exactly (the
            DataFrame's ``memory_usage(deep=True)``), else 0.
    """

    scalars: int
    seconds: float
    peak_bytes: int
    held_bytes: int
    result_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _status_kib(field: str, pid: str = "self") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def start_peak() -> int:
    """Reset the peak RSS to the current RSS where the kernel allows; the baseline bytes."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass  # the peak then includes the imports' own; still compared to the baseline
    return 1024 * _status_kib("VmRSS")


def growth(baseline: int) -> tuple[int, int]:
    """(peak, current) RSS over ``baseline``, in bytes."""
    peak = 1024 * _status_kib("VmHWM") - baseline
    held = 1024 * _status_kib("VmRSS") - baseline
    return max(0, peak), max(0, held)


def measure_ours(root: Path) -> Result:
    """``advisor.read_scalars(root)``: a DataFrame of every point."""
    import pandas  # noqa: F401  (imported before the baseline, as read_scalars needs it)

    import advisor.sources.tfevents  # noqa: F401
    from advisor import read_scalars

    baseline = start_peak()
    t0 = time.perf_counter()
    frame = read_scalars(root)
    seconds = time.perf_counter() - t0
    peak, held = growth(baseline)
    return Result(len(frame), seconds, peak, held, int(frame.memory_usage(deep=True).sum()))


def measure_accumulator(root: Path, *, tf2: bool, multi: bool) -> Result:
    """EventAccumulator keeping everything (size_guidance 0); an EventMultiplexer over
    many runs. TF2 tensors are decoded to numbers (make_ndarray), as we decode them."""
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.backend.event_processing import event_multiplexer
    from tensorboard.util.tensor_util import make_ndarray

    guidance = {event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 0}
    baseline = start_peak()
    t0 = time.perf_counter()
    if multi:
        mux = event_multiplexer.EventMultiplexer(size_guidance=guidance)
        mux.AddRunsFromDirectory(str(root))
        mux.Reload()
        accumulators = [mux.GetAccumulator(run) for run in sorted(mux.Runs())]
    else:
        acc = event_accumulator.EventAccumulator(str(root), size_guidance=guidance)
        acc.Reload()
        accumulators = [acc]
    count = 0
    for acc in accumulators:
        if tf2:
            for tag in acc.Tags()[event_accumulator.TENSORS]:
                count += len([float(make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)])
        else:
            for tag in acc.Tags()[event_accumulator.SCALARS]:
                count += len(acc.Scalars(tag))
    seconds = time.perf_counter() - t0
    return Result(count, seconds, *growth(baseline))


def measure_tbparse(root: Path, *, tf2: bool) -> Result:
    """tbparse's SummaryReader, with wall times, as a DataFrame."""
    from tbparse import SummaryReader

    kind = "tensors" if tf2 else "scalars"
    baseline = start_peak()
    t0 = time.perf_counter()
    reader = SummaryReader(str(root), extra_columns={"wall_time", "dir_name"}, event_types={kind})
    frame = reader.tensors if tf2 else reader.scalars
    seconds = time.perf_counter() - t0
    return Result(len(frame), seconds, *growth(baseline))


def measure_rustboard(
    root: Path, expected: int, series: int, last_step: int, timeout: float = 600.0
) -> Result:
    """TensorBoard's Rust data server keeping every scalar, queried over gRPC until every
    point is served; seconds from its start, and the server process's peak RSS.

    ``series`` (run, tag) pairs must reach ``last_step`` (ListScalars) before the points
    are read (ReadScalars) and counted; the read repeats until all ``expected`` are there.
    """
    import grpc
    import tensorboard_data_server
    from tensorboard.data.proto import data_provider_pb2 as pb
    from tensorboard.data.proto import data_provider_pb2_grpc as pb_grpc

    binary = tensorboard_data_server.server_binary()
    scalars = pb.PluginFilter(plugin_name="scalars")
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        t0 = time.perf_counter()
        server = subprocess.Popen(
            [binary, "--logdir", str(root), "--host", "127.0.0.1", "--port", "0",
             "--port-file", str(port_file), "--samples-per-plugin", "scalars=all",
             "--reload", "once", "--die-after-stdin"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            while not port_file.exists() or not port_file.read_text().endswith("\n"):
                if server.poll() is not None or time.perf_counter() - t0 > timeout:
                    raise RuntimeError("the data server did not start")
                time.sleep(0.002)
            options = [("grpc.max_receive_message_length", 1 << 30)]
            address = f"127.0.0.1:{int(port_file.read_text())}"
            count = 0
            with grpc.insecure_channel(address, options=options) as channel:
                stub = pb_grpc.TensorBoardDataProviderStub(channel)
                while count < expected:
                    if time.perf_counter() - t0 > timeout:
                        raise RuntimeError(f"the data server served {count} of {expected}")
                    listing = stub.ListScalars(pb.ListScalarsRequest(plugin_filter=scalars))
                    done = sum(
                        t.metadata.max_step == last_step for r in listing.runs for t in r.tags
                    )
                    if done < series:
                        time.sleep(0.01)
                        continue
                    request = pb.ReadScalarsRequest(
                        plugin_filter=scalars, downsample=pb.Downsample(num_points=last_step + 2)
                    )
                    response = stub.ReadScalars(request)
                    count = sum(len(t.data.step) for r in response.runs for t in r.tags)
            seconds = time.perf_counter() - t0
            # The server's whole process: its RSS at start (a few MB) is not subtracted.
            peak = 1024 * _status_kib("VmHWM", str(server.pid))
            held = 1024 * _status_kib("VmRSS", str(server.pid))
        finally:
            server.kill()
            server.wait()
    return Result(count, seconds, peak, held)


@dataclass(frozen=True, slots=True)
class Incremental:
    """Tailing one event file: picking up 1,000 appended scalars, and an idle poll."""

    append_ms: float
    idle_us: float
    repeats: int


def measure_incremental(workdir: Path, repeats: int = 21, polls: int = 2000) -> Incremental:
    """TfEventsLoader on a 40,000-scalar file: median time of load() after 1,000
    scalars were appended, and median time of load() on the unchanged file."""
    import eventgen

    from advisor.sources.tfevents import TfEventsLoader

    path = eventgen.write_run(workdir / "tail", 10_000, tf2=False)
    loader = TfEventsLoader(path)
    while loader.load().more:
        pass
    step = 10_000
    append_times = []
    for _ in range(repeats):
        added = eventgen.append_records(path, step, 1000 // len(eventgen.TAGS))
        step += 1000 // len(eventgen.TAGS)
        t0 = time.perf_counter()
        batch = loader.load()
        append_times.append(time.perf_counter() - t0)
        if len(batch.scalars) != added:
            raise RuntimeError(f"picked up {len(batch.scalars)} scalars, expected {added}")
    idle_times = []
    for _ in range(polls):
        t0 = time.perf_counter()
        batch = loader.load()
        idle_times.append(time.perf_counter() - t0)
        if len(batch.scalars):
            raise RuntimeError("an idle poll returned points")
    return Incremental(
        append_ms=1e3 * statistics.median(append_times),
        idle_us=1e6 * statistics.median(idle_times),
        repeats=repeats,
    )
