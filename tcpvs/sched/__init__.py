"""Schedulers: plugins loaded by name from the `tcpvs.schedulers` entry-point group."""

from tcpvs.sched.base import ScheduleContext, Scheduler
from tcpvs.sched.registry import available, load_scheduler

__all__ = ["ScheduleContext", "Scheduler", "available", "load_scheduler"]
