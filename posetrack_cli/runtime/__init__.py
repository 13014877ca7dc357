"""Where the networks run: eager torch, or OpenVINO in fp32, bf16 or int8, chosen per machine.

One job per module: :mod:`.choice` (which runtime and precision a run gets on this machine),
:mod:`.cache` (converted models kept on disk), :mod:`.convert` (torch to OpenVINO, and compiling),
:mod:`.signals` (a workaround OpenVINO's CPU plugin needs), :mod:`.quantize` (int8 calibration),
:mod:`.engines` (the pose network's runtimes) and :mod:`.backbone` (a detector's backbone in
OpenVINO). The networks themselves are :mod:`posetrack_cli.models`; what runs them on frames is
:mod:`posetrack_cli.inference`.
"""
