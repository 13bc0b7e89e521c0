# SPDX-License-Identifier: MIT
#
# The first-run assistant downloads the model from a loopback hub mirror (tests/fetch's fault
# server, which serves only the files the encoder needs — the 404s for tokenizer_config.json and
# special_tokens_map.json must not matter — and cuts every connection after a few megabytes, so
# the download only finishes by resuming), is cancelled half way, resumes from the partial files on
# the next Download, converts the model to the one-file model and stores it and the chosen folders
# in the settings.
import os
import subprocess
import time

import a11y
from a11y import click
from harness import check, finish, label_shown, m3search, screenshot, stop

tmp = os.environ["M3_TEST_TMP"]
fault_server = os.environ["M3_FAULT_SERVER"]
tiny = os.environ["M3_TINY_MODEL"]

# The mirror: the encoder's files and tokenizer.json, nothing else.
root = os.path.join(tmp, "mirror")
os.makedirs(root)
for f in ("config.json", "pytorch_model.bin", "colbert_linear.pt", "sparse_linear.pt", "sentencepiece.bpe.model",
          "tokenizer.json"):
    os.symlink(os.path.join(tiny, f), os.path.join(root, f))
log = os.path.join(tmp, "fault.log")
port_file = os.path.join(tmp, "fault.port")
server = subprocess.Popen([fault_server, "--root", root, "--port-file", port_file, "--log", log,
                           "--cut-after", "3000000", "--rate", "3000000"])
for _ in range(100):
    if os.path.exists(port_file) and open(port_file).read().strip():
        break
    time.sleep(0.1)
port = open(port_file).read().strip()
env = {"HF_ENDPOINT": f"http://127.0.0.1:{port}", "HF_HOME": os.path.join(tmp, "hf-empty"), "no_proxy": "127.0.0.1"}
models = os.path.join(os.environ["XDG_DATA_HOME"], "m3search", "models")

win = m3search(env=env)
try:
    app = a11y.app()
    subprocess.run(["gdbus", "call", "--session", "--dest", "org.m3search.Search", "--object-path",
                    "/org/m3search/Search", "--method", "org.freedesktop.Application.ActivateAction",
                    "first-run", "[]", "{}"], check=True, capture_output=True, timeout=20)
    download = a11y.wait("the Download button",
                         lambda: a11y.find(app, role="push button", contains="Download the Model (2.3 GB)"))
    check("the assistant offers to download the model (2.3 GB)", download is not None)
    check("the assistant offers a .gguf file and a model folder",
          a11y.find(app, role="push button", contains="Use a Model File") is not None
          and a11y.find(app, role="push button", contains="Use a Model Folder") is not None)
    screenshot("first-run")
    click(download)
    progress = a11y.wait("download progress (bytes of total)",
                         lambda: a11y.find(app, role="label", contains=" of "), timeout=30)
    check("the download shows bytes of the total", progress is not None)
    # At 3 MB/s (the server's --rate) the speed and the time left show within the first 3 MB.
    progress = a11y.wait("download speed and time left",
                         lambda: a11y.find(app, role="label", contains="/s · "), timeout=30)
    check(f"the download shows bytes, speed and time left: {progress.get_name()!r}",
          " of " in progress.get_name() and "left" in progress.get_name())
    screenshot("first-run-download")
    click(a11y.wait("Cancel", lambda: a11y.find(app, role="push button", contains="Cancel")))
    check("Cancel stops the download and says it will continue",
          label_shown(app, "The download was stopped. It continues where it stopped when you download again.",
                      timeout=30) is not None)
    parts = [f for f in os.listdir(os.path.join(models, "bge-m3")) if f.endswith(".part")]
    check("the partial file stays after Cancel", len(parts) > 0)
    resume = a11y.wait("the Resume button", lambda: a11y.find(app, role="push button", contains="Resume the Download"))
    check("the button now says Resume", resume is not None)
    click(resume)
    folders = label_shown(app, "Which Folders Should m3search Read?", timeout=90)
    check("after the download and the conversion the assistant asks for folders", folders is not None)
    requests = open(log).read().splitlines()
    check("the cut connections were resumed with Range requests",
          any(l.startswith("GET") and "pytorch_model.bin bytes=" in l for l in requests))
    check("the 404 of tokenizer_config.json did not stop the download",
          any("tokenizer_config.json" in l and " 404" in l for l in requests))
    gguf = os.path.join(models, "bge-m3.gguf")
    check("the model was converted to the one-file model", os.path.getsize(gguf) > 1000000)
    for f in ("config.json", "pytorch_model.bin", "tokenizer.json"):
        check(f"downloaded {f} is identical to the mirror's",
              open(os.path.join(models, "bge-m3", f), "rb").read() == open(os.path.join(tiny, f), "rb").read())
    a11y.settled(folders)  # the folders page slides in
    screenshot("first-run-folders")
    click(a11y.wait("Start Indexing", lambda: a11y.find(app, role="push button", contains="Start Indexing")))
    time.sleep(1)
    got = subprocess.run(["gsettings", "get", "org.m3search.Search", "model"], capture_output=True, text=True).stdout
    check("Start stores the model file in the settings", got.strip() == repr(gguf).replace('"', "'"))
    got = subprocess.run(["gsettings", "get", "org.m3search.Search", "folders"], capture_output=True, text=True).stdout
    check("Start stores the chosen folders (Documents and Desktop preset)", got.strip() == "['&DOCUMENTS', '&DESKTOP']")
finally:
    stop(win)
    server.terminate()
    server.wait()
finish()
