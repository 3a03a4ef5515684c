"""Certificate-bound access tokens (RFC 8705) behind real nginx terminating TLS.

nginx (Debian's package) asks for a client certificate and passes it on as
`$ssl_client_escaped_cert` in `X-SSL-Client-Cert`; the example server (built with
--features reqwest,mtls) trusts that header from nginx's address only. Tokens of the
`oidc-provider` issuer carry `cnf["x5t#S256"]`, the SHA-256 of a client certificate computed
here with `cryptography`: accepted over TLS with that certificate, refused with another or
none, and a client that sends the header itself, from an address that is not the proxy, is
not believed.
"""
import base64, datetime, hashlib, http.client, json, os, shutil, ssl, subprocess, sys, tempfile, time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_oidc import Provider, forged, free_port, tool_server_env, wait_for  # noqa: E402


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def self_signed(directory, name):
    """A key and self-signed certificate in `directory`; answers their paths and the x5t#S256."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
                   .sign(key, hashes.SHA256()))
    key_path, cert_path = os.path.join(directory, f"{name}.key"), os.path.join(directory, f"{name}.pem")
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(cert_path, "wb") as f:
        f.write(certificate.public_bytes(serialization.Encoding.PEM))
    x5t = b64url(hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).digest())
    return key_path, cert_path, x5t


def nginx_config(directory, port, app_port, cert, key):
    return f"""
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_verify_client optional_no_ca;
        location / {{
            proxy_pass http://127.0.0.1:{app_port};
            proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;
            proxy_set_header X-Forwarded-For $remote_addr;
        }}
    }}
}}
"""


def post(host, port, token, context=None, headers=None, source=None):
    if context is not None:
        connection = http.client.HTTPSConnection(host, port, context=context, timeout=10)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=10, source_address=source)
    all_headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    all_headers.update(headers or {})
    connection.request("POST", "/tools/echo", body=b"{}", headers=all_headers)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, (json.loads(body) if response.status == 200 else None)


def tls(cert=None, key=None):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if cert:
        context.load_cert_chain(cert, key)
    return context


def main():
    binary = sys.argv[1]
    results = []

    def check(name, condition, detail=""):
        condition = bool(condition)
        results.append(condition)
        print(("ok   " if condition else "FAIL ") + "mtls: " + name + ("" if condition else f": {detail}"))

    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if nginx is None:
        check("nginx is installed", False, "nginx not found")
        sys.exit(1)
    directory = tempfile.mkdtemp(prefix="callguard-mtls-")
    server_key, server_cert, _ = self_signed(directory, "server")
    client_key, client_cert, x5t = self_signed(directory, "client")
    other_key, other_cert, _ = self_signed(directory, "other")
    provider = Provider(free_port(), "rsa-a")
    processes = []
    try:
        app_port, tls_port = free_port(), free_port()
        env = tool_server_env(f"127.0.0.1:{app_port}", provider, CALLGUARD_TRUSTED_PROXIES="127.0.0.1/32",
                              CALLGUARD_CLIENT_CERT_HEADER="x-ssl-client-cert")
        processes.append(subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for(f"http://127.0.0.1:{app_port}/healthz")
        config = os.path.join(directory, "nginx.conf")
        with open(config, "w") as f:
            f.write(nginx_config(directory, tls_port, app_port, server_cert, server_key))
        processes.append(subprocess.Popen([nginx, "-p", directory, "-c", config, "-g", "daemon off;"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                post("127.0.0.1", tls_port, "x", context=tls())
                break
            except OSError:
                time.sleep(0.1)

        bound = forged(provider.issuer, jti="bound", cnf={"x5t#S256": x5t})
        status, answer = post("127.0.0.1", tls_port, bound, context=tls(client_cert, client_key))
        check("a certificate-bound token over TLS with its certificate is accepted, naming it",
              status == 200 and answer["x5t"] == x5t and answer["method"] == "oauth", (status, answer))
        status, _ = post("127.0.0.1", tls_port, bound, context=tls(other_cert, other_key))
        check("the bound token with another certificate is 401", status == 401, status)
        status, _ = post("127.0.0.1", tls_port, bound, context=tls())
        check("the bound token without a certificate is 401", status == 401, status)
        unbound = forged(provider.issuer, jti="unbound")
        status, answer = post("127.0.0.1", tls_port, unbound, context=tls(other_cert, other_key))
        check("an unbound token passes as before", status == 200 and answer["x5t"] is None, (status, answer))

        # A client that is not the proxy sets the header itself: not believed.
        with open(client_cert, "rb") as f:
            escaped = "".join(c if c.isalnum() or c in "-._~" else "%%%02X" % ord(c) for c in f.read().decode())
        status, _ = post("127.0.0.1", app_port, bound, headers={"x-ssl-client-cert": escaped},
                         source=("127.0.0.2", 0))
        check("the header from an address that is not the proxy is not believed", status == 401, status)
        status, answer = post("127.0.0.1", app_port, bound, headers={"x-ssl-client-cert": escaped})
        check("the same header from the proxy's address is (what nginx relies on)", status == 200, (status, answer))
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
        provider.stop()
        shutil.rmtree(directory, ignore_errors=True)
    print(f"mtls: {sum(results)}/{len(results)} passed")
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
