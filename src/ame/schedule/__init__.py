"""Scheduled and automatic runs: cron triggers, monitoring and batch schedules, autoTrain.

ame.yml declares *when* (a task's ``triggers.schedule``, ``monitoring.schedule``,
``batchInference.schedule``, ``deployment.autoTrain``); this package is what
makes those declarations happen. ``jobs`` lists the jobs a project declares,
``cron`` computes fire times (croniter, zoneinfo), ``state`` keeps one record
per fire under ``<project>/.ame/schedule/`` so a restarted scheduler never runs
a fire twice, ``scheduler`` is the loop, ``daemon`` the one-per-project
background process, and ``notice`` the one line ``validate``/``train``/``status``
print when a project's schedules have nobody to run them.

Import-light: nothing here imports mlflow; every fire runs the real ``ame`` CLI
in a subprocess, so the scheduler stays small and a fire behaves exactly like
the command a person would type.
"""
