"""The registries' apps: generator, discriminator and merger, each its own OS process.

One module per role of the paper's Figure 3 (:mod:`.generator`: flows 1, 2a, 2b,
6, 9a; :mod:`.discriminator`: 3, 4a, 4b, 5a, 5b, 9b; :mod:`.merger`: 7, 8), what
they share (:mod:`.base`: identity, workspace, run discovery, status;
:mod:`.events`: the resumable chaincode-event loop) and one registry's stack of
the three (:mod:`.registry`). They meet only on the ledger (channel ``gan``);
a registry's three apps share only its workspace.
"""
