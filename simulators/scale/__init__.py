"""The fleet at scale: hundreds of simulated bookcases in one process, each running the real core (flow, store,
outbox relay, fleet sync) against in-process devices, with the library's circulation, faults on a schedule, and
an end check that nothing was lost or doubled between the bookcases and the ILS (docs/fleet-scale.md)."""
