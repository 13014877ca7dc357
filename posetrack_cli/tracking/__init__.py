"""Steps 2, 3, 5 and 6 of the paper's Algorithm 1 as pure functions and one tracker, on core types only.

Flow boxes and their NMS (:mod:`.proposals`), person scoring (:mod:`.scoring`), OKS and IoU
similarity (:mod:`.similarity`), the queue-and-greedy tracker with its lost-track memory
(:mod:`.tracker`), own motion (:mod:`.motion`), torso colours (:mod:`.appearance`), offline
stitching (:mod:`.stitching`) and One Euro smoothing (:mod:`.smoothing`). No model, no file, no video.
"""
