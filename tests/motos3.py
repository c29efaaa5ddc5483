"""moto's real S3 server on loopback, with the environment s3fs and boto3 read pointed at it."""
import contextlib
import logging
import os


@contextlib.contextmanager
def moto_s3():
    """Yields (boto3 client, the environment a subprocess needs); restores os.environ after."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    import boto3

    try:
        yield boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"]), env
    finally:
        server.stop()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
