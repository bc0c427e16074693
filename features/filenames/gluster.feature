@filenames @format:gluster @protocol:gluster @spec:gluster
Feature: GlusterFS filenames
  gluster[+tcp|+unix|+rdma]://[HOST[:PORT]]/VOLUME/PATH[?socket=SOCKET] names an image on a
  volume; tcp is the default transport, localhost the default host, 24007 the default port;
  +rdma falls back to tcp. The json: and dotted forms take a list of servers, tried in order.
  qemu-img shows what it made of the name in its connection failure ("volume V, path P ... failed
  on host H and port N"), which needs no gluster server.

  @spec:gluster.uri @spec:gluster.transport @spec:gluster.port
  Scenario Outline: <name> names volume <volume>, path <path>
    When the filename '<name>' is resolved
    Then the options are "volume=<volume>,path=<path>,<server>"

    Examples:
      | name                                          | volume  | path      | server                                                        |
      | gluster://127.0.0.1:1/testvol/a.img           | testvol | a.img     | server.0.type=inet,server.0.host=127.0.0.1,server.0.port=1    |
      | gluster://nosuch.invalid/testvol/a.img        | testvol | a.img     | server.0.host=nosuch.invalid,server.0.port=24007              |
      | gluster:///testvol/a.img                      | testvol | a.img     | server.0.host=localhost,server.0.port=24007                   |
      | gluster://[::1]:1/testvol/a.img               | testvol | a.img     | server.0.host=[::1],server.0.port=1                           |
      | gluster+unix:///testvol/a.img?socket={missing} | testvol | a.img    | server.0.type=unix,server.0.path={missing}                    |
      | gluster+rdma://127.0.0.1:1/testvol/a.img      | testvol | a.img     | server.0.type=inet,server.0.host=127.0.0.1,server.0.port=1    |

  @spec:gluster.json
  Scenario: the manual's json: form lists a tcp and a unix server
    When the filename 'json:{"driver":"qcow2","file":{"driver":"gluster","volume":"testvol","path":"a.img","debug":9,"logfile":"{dir}/gluster.log","server":[{"type":"tcp","host":"127.0.0.1","port":1},{"type":"unix","socket":"{missing}"}]}}' is resolved
    Then the options are "file.volume=testvol,file.path=a.img,file.server.0.type=inet,file.server.0.host=127.0.0.1,file.server.0.port=1,file.server.1.type=unix,file.server.1.path={missing},file.debug=9"

  @spec:gluster.options @spec:gluster.debug @spec:gluster.logfile
  Scenario: the manual's dotted form lists the servers by index
    When the option list 'driver=qcow2,file.driver=gluster,file.volume=testvol,file.path=/path/a.img,file.debug=9,file.logfile={dir}/gluster.log,file.server.0.type=tcp,file.server.0.host=127.0.0.1,file.server.0.port=1,file.server.1.type=unix,file.server.1.socket={missing}' is resolved
    Then the options are "file.volume=testvol,file.path=/path/a.img,file.server.0.type=inet,file.server.0.host=127.0.0.1,file.server.0.port=1,file.server.1.type=unix,file.server.1.path={missing},file.debug=9,file.logfile={dir}/gluster.log"

  @spec:gluster.uri @refusal
  Scenario Outline: a malformed gluster name is refused: <what>
    When the filename '<name>' is resolved
    Then the filename is refused with "<says>"

    Examples:
      | what                             | name                                          | says                                                   |
      | a volume but no image path       | gluster://127.0.0.1:1/testvol                 | invalid URI gluster://127.0.0.1:1/testvol              |
      | a unix URI with a host           | gluster+unix://h/testvol/a.img?socket=/s      | invalid URI gluster+unix://h/testvol/a.img?socket=/s   |
      | a unix URI without socket        | gluster+unix:///testvol/a.img                 | invalid URI gluster+unix:///testvol/a.img              |
      | a port above 65535               | gluster://127.0.0.1:65536/testvol/a.img       | invalid URI gluster://127.0.0.1:65536/testvol/a.img    |
      | an unknown transport             | gluster+foo://h/testvol/a.img                 | Unknown protocol 'gluster+foo'                         |
      | no server in the options         | json:{"driver":"gluster","volume":"v","path":"p"} | Parameter 'server' is missing                      |
      | an unknown server type           | json:{"driver":"gluster","volume":"v","path":"p","server":[{"type":"bogus"}]} | Parameter 'type' may be 'inet' or 'unix' |
