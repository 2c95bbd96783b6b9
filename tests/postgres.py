"""A real PostgreSQL for the tests: Debian's package (installed when missing), a cluster made
with initdb in a temporary directory, started on a free loopback port and stopped at the end.

PostgreSQL refuses to run as root, and CI runs as root: then every server command runs as the
``postgres`` system user the package creates (``runuser -u postgres --``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def _bin_dir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(versions[-1]).parent if versions else None


def ensure_installed() -> Path:
    """The directory of pg_ctl/initdb, installing Debian's postgresql if needed (as root)."""
    found = _bin_dir()
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "postgresql"],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        found = _bin_dir()
    if found is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    return found


@dataclass
class PostgresServer:
    """One running cluster; ``dsn(db)`` for a database in it."""

    data: Path
    port: int
    bin_dir: Path

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(
            [*prefix, *command], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    @classmethod
    def start(cls) -> PostgresServer:
        """initdb in a fresh temporary directory (pytest's are private to root, which the
        ``postgres`` user cannot enter), then start."""
        bin_dir = ensure_installed()
        base = Path(tempfile.mkdtemp(prefix="keyfindings-pg-"))
        base.chmod(0o755)
        data = base / "data"
        data.mkdir()
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(base, user.pw_uid, user.pw_gid)
            os.chown(data, user.pw_uid, user.pw_gid)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = cls(data, port, bin_dir)
        server._run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                    "--no-sync", "-E", "UTF8")  # fmt: skip
        server.pg_ctl("start")
        return server

    def pg_ctl(self, action: str) -> None:
        """start, stop or restart the cluster (waiting until it is done)."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} -c fsync=off"
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l",
                  str(self.data / "log"), "-w", "-m", "fast", "-o", options, action)  # fmt: skip

    def create_database(self, name: str) -> str:
        """A fresh database; its URL."""
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def dsn(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self, *, remove: bool = True) -> None:
        """Stop the server (fast shutdown); ``remove`` deletes its files too."""
        self.pg_ctl("stop")
        if remove:
            shutil.rmtree(self.data.parent, ignore_errors=True)
