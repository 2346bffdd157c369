# Kuzet for one post's server: `docker compose up -d` with docker-compose.yml beside this file
# (README, "Production"). Kuzet is built into a wheel in a throw-away stage and installed from it,
# so the image holds the installed package only, not the source tree.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY kuzet ./kuzet
COPY console ./console
COPY receivers ./receivers
COPY dispatch ./dispatch
COPY compliance ./compliance
COPY web ./web
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
LABEL org.opencontainers.image.title="Kuzet" \
      org.opencontainers.image.description="Centralized security post: alarm receivers, live board, dispatch, compliance" \
      org.opencontainers.image.licenses="AGPL-3.0-or-later"
# A user of its own (no root in the running container); "dialout" may open serial receivers' ports.
RUN useradd --system --uid 10001 --user-group --groups dialout --home-dir /var/lib/kuzet --shell /usr/sbin/nologin kuzet \
    && mkdir -p /var/lib/kuzet /etc/kuzet \
    && chown kuzet /var/lib/kuzet && chmod 0700 /var/lib/kuzet
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER kuzet
WORKDIR /var/lib/kuzet
ENV KUZET_HOME=/var/lib/kuzet \
    PYTHONUNBUFFERED=1
# DC-09 from the panels (TCP and UDP), the web for the operators.
EXPOSE 7000/tcp 7000/udp 8000/tcp
# The web answers (the login page is the one page without a session). Plain HTTP inside the
# container: with [web] tls_cert set, change the URL to https and skip the certificate check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/login', timeout=4)"]
CMD ["kuzet", "run", "--config", "/etc/kuzet/kuzet.toml"]
