"""Every Prometheus metric watchtower exports, on a registry per daemon instance.

A registry per instance (not the global one) lets tests run several daemons in one process and
keeps reloads from registering a metric twice.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        ProcessCollector(registry=r)  # process_cpu_seconds_total, resident memory, open fds
        self.mentions_received = Counter(
            "watchtower_mentions_received", "Records received", ["source"], registry=r
        )
        self.mentions_accepted = Counter(
            "watchtower_mentions_accepted", "Mentions decoded and queued", ["source"], registry=r
        )
        self.mentions_rejected = Counter(
            "watchtower_mentions_rejected",
            "Records refused, by source and the field at fault",
            ["source", "reason"],
            registry=r,
        )
        # Requests turned away whole before any record was taken (backpressure, shutdown): not
        # received, so received = accepted + rejected still holds. Requests show how often a
        # producer is pushed back; records show how much it has to hold and resend (a resent
        # body counts again). A body refused at shutdown before it is read adds no records.
        self.ingest_refused = Counter(
            "watchtower_ingest_refused",
            "Ingest requests refused whole and to be retried, by source and reason",
            ["source", "reason"],  # queue_full | shutting_down
            registry=r,
        )
        self.ingest_refused_records = Counter(
            "watchtower_ingest_refused_records",
            "Records in refused ingest requests (counted again when resent; unread bodies: 0)",
            ["source", "reason"],  # queue_full | shutting_down
            registry=r,
        )
        # Ingest requests rejected whole for what they are, not for the daemon's state: a wrong
        # token, a body over http.max_body_bytes, a content type or encoding not accepted, a body
        # that is not records at all. Resent as they are they fail again, so they are kept apart
        # from ingest_refused (retry later). Their records were never read: no record count, and
        # nothing is counted as received (received = accepted + rejected still holds). Also here
        # (client_gone): a client that hung up before the end of its body, answered by no one;
        # what it did send is not read either; (body_stalled) one whose body stopped coming for
        # http.body_timeout, answered 408. And (malformed_request) a request aiohttp's parser
        # refused as not HTTP/1.1: a chunked body whose framing is broken (or, with its C parser,
        # a header it refuses); counted whatever the path, for it is refused before routing.
        self.ingest_requests_rejected = Counter(
            "watchtower_ingest_requests_rejected",
            "Ingest requests rejected whole, not to be retried as they are, by source and reason",
            # unauthorized | too_large | unsupported_type | unsupported_encoding | bad_body
            # | client_gone | body_stalled | malformed_request
            ["source", "reason"],
            registry=r,
        )
        self.queue_depth = Gauge("watchtower_queue_depth", "Mentions waiting", registry=r)
        self.queue_capacity = Gauge(
            "watchtower_queue_capacity",
            "Mentions the queue holds at most (daemon.queue_size)",
            registry=r,
        )
        self.processing_seconds = Histogram(
            "watchtower_processing_seconds",
            "From a mention's arrival to its decision",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.active_threads = Gauge("watchtower_active_threads", "Threads held", registry=r)
        self.storms_firing = Gauge(
            "watchtower_storms_firing", "Brands with a complaint storm going on", registry=r
        )
        self.alert_transitions = Counter(
            "watchtower_alert_transitions", "Alert transitions", ["level", "state"], registry=r
        )
        # Per notification: sent once at least one of its route's URLs took it (people heard);
        # failed for an attempt where none had yet, final="true" when none ever did. What one
        # URL of a route does is apart, in notification_url_failures, so a dead URL beside a
        # working one is seen without calling the notification lost.
        self.notifications_sent = Counter(
            "watchtower_notifications_sent",
            "Notifications that reached at least one URL of their route",
            ["route"],
            registry=r,
        )
        self.notifications_failed = Counter(
            "watchtower_notifications_failed",
            "Attempts at a notification no URL of its route had taken; final: given up",
            ["route", "final"],
            registry=r,
        )
        self.notification_url_failures = Counter(
            "watchtower_notification_url_failures",
            "Failed attempts to one URL of a route (url: its position, urls[N]); final: given up",
            ["route", "url", "final"],
            registry=r,
        )
        self.notifications_suppressed = Counter(
            "watchtower_notifications_suppressed",
            "Notifications held back on purpose and never sent, by route and reason",
            ["route", "reason"],  # silenced (maintenance window) | acked (episode acknowledged)
            registry=r,
        )
        self.notifications_pending = Gauge(
            "watchtower_notifications_pending",
            "Notifications not yet delivered",
            ["route"],
            registry=r,
        )
        self.config_reload_success = Gauge(
            "watchtower_config_last_reload_successful", "1 if the last reload worked", registry=r
        )
        self.config_reload_time = Gauge(
            "watchtower_config_last_reload_success_timestamp_seconds",
            "When the config was last loaded successfully",
            registry=r,
        )
        self.config_restart_pending = Gauge(
            "watchtower_config_restart_pending",
            "Keys the config file changes that only a restart applies (they keep running values)",
            registry=r,
        )
        self.config_reload_failures = Counter(
            "watchtower_config_reload_failures", "Reloads refused (the old config kept)", registry=r
        )
        self.batch_failures = Counter(
            "watchtower_batch_failures",
            "Engine batches that failed, by what happened next",
            ["outcome"],  # retried | dropped
            registry=r,
        )
        self.mentions_set_aside = Counter(
            "watchtower_mentions_set_aside",
            "Mentions accepted but never decided (dead-lettered when input.dead_letter is set)",
            ["reason"],  # batch_dropped | unreadable_state | too_late | shutdown
            registry=r,
        )
        self.mentions_repeated = Counter(
            "watchtower_mentions_repeated",
            "Mentions dropped as repeats of an id already taken (redelivered, resent)",
            registry=r,
        )
        self.store_state_lost = Counter(
            "watchtower_store_state_lost",
            "Times the state store was found to have lost what it held (flushed, restarted empty)",
            registry=r,
        )
        self.thread_states_unreadable = Counter(
            "watchtower_thread_states_unreadable",
            "Times a thread was left out: its stored state is another build's, or corrupt",
            registry=r,
        )
        self.mqtt_enabled = Gauge(
            "watchtower_mqtt_enabled", "1 when the daemon reads an MQTT source", registry=r
        )
        self.mqtt_connected = Gauge(
            "watchtower_mqtt_connected", "1 while the MQTT source has a session", registry=r
        )
        self.idle_advances = Counter(
            "watchtower_idle_advances", "Event-time advances while the stream was idle", registry=r
        )
