{
  "targets": [
    {
      "target_name": "hostfile",
      "sources": ["native/hostfile.c"],
      "cflags": ["-O2", "-Wall"]
    }
  ]
}
