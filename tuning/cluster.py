"""KerasTuner's own chief / worker mode, with the liveness rules KerasTuner lacks.

KerasTuner distributes a search through three environment variables: ``KERASTUNER_TUNER_ID``
(``chief`` or a worker's name), ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT``. The chief
holds the oracle and serves it over gRPC; every worker runs trials it asks the chief for and
reports the results back. ``tune --chief`` / ``--worker NAME --oracle HOST:PORT`` set them (or
they are taken from the environment).

Plain KerasTuner waits forever when a worker dies (keras-tuner #915: the chief waits for the dead
worker's trial to end) and a worker waits an hour for a chief that is gone. Here:

- every worker checks in with the chief at least every ``heartbeat_every(timeout)`` seconds
  while it is alive (a trial's start and end, and a heartbeat thread in between);
- a worker not heard from for ``--timeout`` seconds is dead: its running trial is ended as
  failed (the search goes on without it) and it no longer holds up the end of the search;
- a chief that has heard from no worker for ``--timeout`` seconds while the search is not
  done gives up with one error line; the finished trials stay in the search directory and the
  same command continues them;
- a worker that cannot reach the chief within ``--connect-timeout`` seconds, or that gets no
  answer for ``--timeout`` seconds later on, stops with one error line.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass

from ser_keras.errors import ConfigError, SERError

ENV_ID, ENV_IP, ENV_PORT = "KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"
LOCAL_ID = "local"
DEFAULT_CHIEF_ADDRESS = "0.0.0.0:8000"


class TuneError(SERError):
    """A search that cannot go on (no workers, chief gone, every trial failed)."""


@dataclass
class Role:
    kind: str              # "local", "chief" or "worker"
    tuner_id: str
    host: str | None = None
    port: int | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = str(text).strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--oracle expects HOST:PORT (e.g. 10.0.0.5:8000), got '{text}'")
    return host.strip("[]"), int(port)


def role_from(chief: bool = False, worker: str | None = None, oracle: str | None = None,
              environ=os.environ) -> Role:
    """The process's part in the search, from the options or else KerasTuner's environment."""
    if chief and worker:
        raise ConfigError("--chief and --worker exclude each other")
    if worker is not None and (not worker.strip() or "chief" in worker):
        raise ConfigError(f"--worker needs a name without 'chief' in it (KerasTuner's rule), got '{worker}'")
    if chief or worker:
        address = oracle or (f"{environ[ENV_IP]}:{environ[ENV_PORT]}" if environ.get(ENV_IP) and
                             environ.get(ENV_PORT) else None)
        if worker and not address:
            raise ConfigError("--worker needs --oracle HOST:PORT: the address the chief listens on")
        host, port = parse_address(address or DEFAULT_CHIEF_ADDRESS)
        return Role("chief" if chief else "worker", "chief" if chief else worker.strip(), host, port)
    if oracle:
        raise ConfigError("--oracle needs --chief or --worker NAME")
    if environ.get(ENV_IP):  # KerasTuner's variables, as its own docs set them
        if not environ.get(ENV_PORT) or not environ.get(ENV_ID):
            raise ConfigError(f"{ENV_IP} is set: {ENV_PORT} and {ENV_ID} are needed too")
        host, port = parse_address(f"{environ[ENV_IP]}:{environ[ENV_PORT]}")
        tuner_id = environ[ENV_ID]
        return Role("chief" if "chief" in tuner_id else "worker", tuner_id, host, port)
    return Role("local", LOCAL_ID)


@contextlib.contextmanager
def role_environment(role: Role):
    """KerasTuner reads its role from os.environ: set it for the search, restore it afterwards."""
    saved = {name: os.environ.get(name) for name in (ENV_ID, ENV_IP, ENV_PORT)}
    os.environ[ENV_ID] = role.tuner_id
    if role.kind == "local":
        os.environ.pop(ENV_IP, None)
        os.environ.pop(ENV_PORT, None)
    else:
        os.environ[ENV_IP], os.environ[ENV_PORT] = role.host, str(role.port)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def heartbeat_every(timeout: float) -> float:
    return max(0.5, min(30.0, timeout / 5.0))


# ----------------------------------------------------------------------------- worker side

def wait_for_chief(role: Role, connect_timeout: float) -> None:
    """Return once the chief's address answers; one TuneError line when it does not in time."""
    import grpc

    channel = grpc.insecure_channel(role.address)
    try:
        grpc.channel_ready_future(channel).result(timeout=connect_timeout)
    except grpc.FutureTimeoutError:
        raise TuneError(f"cannot reach the chief at {role.address} within {connect_timeout:g} s: is "
                        f"`tune --chief` running there with that port open? (--connect-timeout)") from None
    finally:
        channel.close()


def set_client_timeout(timeout: float) -> None:
    """How long a worker waits for each answer from the chief (KerasTuner: an hour)."""
    from keras_tuner.src.distribute import oracle_client

    oracle_client.TIMEOUT = float(timeout)


class Heartbeat:
    """A worker's thread that reminds the chief it is alive while a trial runs."""

    def __init__(self, client, interval: float):
        self.client, self.interval = client, interval
        self.trial_id = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tune-heartbeat", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()

    def _run(self):
        import grpc
        from keras_tuner.src import protos

        while not self._stop.wait(self.interval):
            trial_id = self.trial_id
            if trial_id is None:
                continue
            try:
                self.client.stub.GetTrial(protos.get_service().GetTrialRequest(trial_id=trial_id),
                                          timeout=self.interval)
            except grpc.RpcError:
                pass  # the main thread finds out at its next call, with its own timeout


# ----------------------------------------------------------------------------- chief side

class Watch:
    """When the chief last heard from each tuner (by id), and from anyone."""

    def __init__(self, owners: dict):
        self.owners = owners  # trial id -> tuner id (kept by the search's oracle hooks)
        self.start = self.last_any = time.monotonic()
        self.last = {}
        self.lock = threading.Lock()

    def heard(self, tuner_id=None):
        now = time.monotonic()
        with self.lock:
            self.last_any = now
            if tuner_id:
                self.last[tuner_id] = now

    def heard_trial(self, trial_id):
        self.heard(self.owners.get(trial_id))

    def silent_for(self, tuner_id) -> float:
        return time.monotonic() - self.last.get(tuner_id, self.start)


def _watched_servicer(oracle, watch):
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    class WatchedServicer(OracleServicer):
        def GetSpace(self, request, context):
            watch.heard()
            return super().GetSpace(request, context)

        def UpdateSpace(self, request, context):
            watch.heard()
            return super().UpdateSpace(request, context)

        def CreateTrial(self, request, context):
            watch.heard(request.tuner_id)
            response = super().CreateTrial(request, context)
            watch.heard(request.tuner_id)
            return response

        def UpdateTrial(self, request, context):
            watch.heard_trial(request.trial_id)
            return super().UpdateTrial(request, context)

        def EndTrial(self, request, context):
            watch.heard_trial(request.trial.trial_id)
            return super().EndTrial(request, context)

        def GetTrial(self, request, context):
            watch.heard_trial(request.trial_id)
            return super().GetTrial(request, context)

        def GetBestTrials(self, request, context):
            watch.heard()
            return super().GetBestTrials(request, context)

    return WatchedServicer(oracle)


def serve(oracle, role: Role, watch: Watch, timeout: float, on_dead=print, poll: float = 0.5) -> None:
    """Serve ``oracle`` to the workers until the search is done (KerasTuner's chief loop, with
    the liveness rules above); TuneError when no worker has been heard from for ``timeout``."""
    import grpc
    from concurrent import futures

    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import exit_chief

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = _watched_servicer(oracle, watch)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(role.address)
    except RuntimeError:
        bound = 0
    if not bound:
        raise TuneError(f"the chief cannot listen on {role.address} (port in use, or not an address of "
                        f"this machine?); pick another with --oracle HOST:PORT")
    server.start()
    try:
        while True:
            time.sleep(poll)
            if servicer.stop_triggered and exit_chief(oracle):
                return  # every trial ended and every worker was told to stop
            _end_dead_workers(oracle, watch, timeout, on_dead)
            if time.monotonic() - watch.last_any > timeout:
                if _search_is_over(oracle) and not oracle.ongoing_trials:
                    return  # every trial ended; the workers left without asking for more
                raise TuneError(f"no worker has contacted the chief for {timeout:g} s (none started, or all "
                                f"stopped?); start workers with `tune ... --worker NAME --oracle HOST:PORT`, "
                                f"or run the same command again to continue (--timeout)")
    finally:
        server.stop(grace=1)


def _end_dead_workers(oracle, watch: Watch, timeout: float, on_dead) -> None:
    from keras_tuner.src.engine import trial as trial_module

    for tuner_id, trial in list(oracle.ongoing_trials.items()):
        if watch.silent_for(tuner_id) > timeout:
            trial.status = trial_module.TrialStatus.FAILED
            trial.message = f"worker {tuner_id} stopped answering (silent for {timeout:g} s)"
            on_dead(f"note: worker {tuner_id} silent for {timeout:g} s: its trial {trial.trial_id} is "
                    f"marked failed and the search goes on without it")
            oracle.end_trial(trial)
            oracle.tuner_ids.discard(tuner_id)
    for tuner_id in list(oracle.tuner_ids):  # idle (no trial) and gone
        if tuner_id not in oracle.ongoing_trials and watch.silent_for(tuner_id) > timeout:
            oracle.tuner_ids.discard(tuner_id)


def _search_is_over(oracle) -> bool:
    """Every trial the oracle will hand out has been handed out (max_trials reached)."""
    return bool(oracle.max_trials) and len(oracle.trials) >= oracle.max_trials and not oracle._retry_queue
