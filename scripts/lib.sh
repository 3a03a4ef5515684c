# Shared by the scripts: driving the example server over loopback, building benches and
# running them under valgrind. Source it.

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Wait until the server at $CALLGUARD_ADDR answers /healthz (10 s at most).
wait_healthy() {
  for _ in $(seq 1 100); do
    curl -fsS "http://$CALLGUARD_ADDR/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "the example server did not answer on $CALLGUARD_ADDR" >&2
  return 1
}

# Start BINARY (the built example server) with the current environment, stop it when the
# calling script exits, and wait until it answers. Sets $server to its process id. Its
# stderr (the log) goes to $server_log when that is set.
start_tool_server() {
  "$1" >/dev/null 2>"${server_log:-/dev/null}" &
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  wait_healthy
}

# Install valgrind from Debian's packages when it is missing.
ensure_valgrind() {
  if ! command -v valgrind >/dev/null; then
    apt-get install -y -q valgrind >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q valgrind >/dev/null; }
  fi
}

# Build the bench NAME (release) and print the path of its executable.
bench_executable() {
  cargo bench --quiet --bench "$1" --no-run 2>/dev/null
  cargo bench --quiet --bench "$1" --no-run --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[1] and m.get("executable"):
        print(m["executable"])' "$1"
}
