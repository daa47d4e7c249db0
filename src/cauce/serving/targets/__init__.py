"""Export targets: Kubernetes and KServe manifests behind one interface (:mod:`.base`)."""
