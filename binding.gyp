{
  "variables": {
    "have_gfapi": "<!(test -f /usr/include/glusterfs/api/glfs.h && echo 1 || echo 0)"
  },
  "targets": [
    {
      "target_name": "hostfile",
      "sources": ["native/hostfile.c"],
      "cflags": ["-O2", "-Wall"]
    }
  ],
  "conditions": [
    ["have_gfapi==1", {
      "targets": [
        {
          "target_name": "gluster",
          "sources": ["native/gluster.c"],
          "cflags": ["-O2", "-Wall"],
          "libraries": ["-lgfapi"]
        }
      ]
    }]
  ]
}
