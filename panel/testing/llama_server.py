"""llama.cpp's own HTTP server, from the `xllamacpp` wheel, in this process: for the tests
and benchmarks that reach a stock llama.cpp server over loopback.

    python -m panel.testing.llama_server MODEL.gguf PORT

It serves MODEL on 127.0.0.1:PORT (n_ctx 4096, one slot, one thread) until its standard
input closes, so it also goes when the process that started it dies.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
    import xllamacpp

    path, port = argv[0], int(argv[1])
    params = xllamacpp.CommonParams()
    params.model.path = path
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_ctx = 4096
    params.n_parallel = 1
    params.cpuparams.n_threads = 1
    params.cpuparams_batch.n_threads = 1
    server = xllamacpp.Server(params)
    print("serving on", server.listening_address, flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main(sys.argv[1:])
