"""The ray backend: tasks as Ray jobs on a cluster, submitted through its dashboard.

``backend.RayBackend`` implements ``ame.backends.base.Backend``; ``jobs`` submits
and follows one task; ``workdir`` decides what of the project travels with it;
``entry`` is what runs on the node (it builds the task's environment there and
runs the command with that environment's interpreter); ``cluster`` is the one
place that talks to the cluster's HTTP API. ``serve`` deploys models as Ray
Serve applications through the dashboard's declarative Serve API, and
``replica`` is what each Serve replica runs (ame's own ASGI app, the version
swap, metrics summed across replicas); ``batch`` runs ``ame predict`` as a job.

Import-light: nothing here imports ``ray`` until a function that needs it runs
(``pip install 'ame[ray]'`` brings it).
"""
