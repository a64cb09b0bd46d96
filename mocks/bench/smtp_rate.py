"""SMTP intake rate of the catcher from a separate process: N smtplib threads, each on its own
connection, send M messages; prints messages/s. Figures only.

Usage: python mocks/bench/smtp_rate.py HOST:PORT [threads=8] [per_thread=250]
"""
import smtplib
import sys
import threading
import time
from email.message import EmailMessage


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    per = int(sys.argv[3]) if len(sys.argv) > 3 else 250

    def build(n, i):
        m = EmailMessage()
        m["From"] = f"s{n}@example.com"
        m["To"] = "inbox@example.com"
        m["Subject"] = f"rate {n}-{i}"
        m.set_content("Lorem ipsum dolor sit amet. " * 20)
        m.add_alternative(f"<p>message {i}</p>", subtype="html")
        return m.as_bytes()

    # Messages are built before the clock starts: Python's email package, not the server, would
    # otherwise be what is measured.
    prepared = {n: [build(n, i) for i in range(per)] for n in range(threads)}

    def send(n):
        with smtplib.SMTP(host, int(port)) as s:
            for raw in prepared[n]:
                s.sendmail(f"s{n}@example.com", ["inbox@example.com"], raw)

    workers = [threading.Thread(target=send, args=(n,)) for n in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    total = threads * per
    print(f"{total} messages from {threads} smtplib threads in {elapsed:.3f} s = {total / elapsed:.0f} messages/s")


if __name__ == "__main__":
    main()
