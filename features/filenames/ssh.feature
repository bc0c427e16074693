@filenames @format:ssh @protocol:ssh @spec:ssh
Feature: ssh filenames
  ssh://[USER@]SERVER[:PORT]/PATH[?host_key_check=yes|no|md5:FP|sha1:FP] names an image on a
  remote host, or the options file.driver=ssh,file.user=,file.host=,file.port=,file.path=,
  file.host_key_check=. The user is the local one by default, the port 22, host_key_check yes
  (known_hosts). qemu-img shows the server it made of the name by the address it fails to reach.

  @spec:ssh.uri @spec:ssh.user @spec:ssh.port @spec:ssh.host_key_check
  Scenario Outline: <name> names <options>
    When the filename '<name>' is resolved
    Then the options are "<options>"

    Examples:
      | name                                                | options                                                                 |
      | ssh://127.0.0.1:1/images/disk.img                   | server.host=127.0.0.1,server.port=1,path=/images/disk.img,!user         |
      | ssh://me@127.0.0.1:1/images/disk.img                | server.host=127.0.0.1,server.port=1,user=me                             |
      | ssh://nosuch.invalid/images/disk.img                | server.host=nosuch.invalid,server.port=22                               |
      | ssh://127.0.0.1:1/images/a%20b.img                  | server.port=1,path=/images/a b.img                                      |
      | ssh://127.0.0.1:1/disk.img?host_key_check=no        | server.port=1,host-key-check.mode=none                                  |
      | ssh://127.0.0.1:1/disk.img?host_key_check=md5:78:45:8e:14:57:4f:d5:45:83:0a:0e:f3:49:82:c9:c8 | server.port=1,host-key-check.mode=hash,host-key-check.type=md5,host-key-check.hash=78:45:8e:14:57:4f:d5:45:83:0a:0e:f3:49:82:c9:c8 |
      | ssh://127.0.0.1:1/disk.img?host_key_check=sha1:0123456789abcdef0123456789abcdef01234567 | server.port=1,host-key-check.type=sha1,host-key-check.hash=0123456789abcdef0123456789abcdef01234567 |

  @spec:ssh.options
  Scenario: the manual's alternative syntax uses options
    When the option list 'driver=raw,file.driver=ssh,file.user=me,file.host=127.0.0.1,file.port=1,file.path=/images/disk.img,file.host_key_check=no' is resolved
    Then the options are "file.server.host=127.0.0.1,file.server.port=1,file.user=me,file.path=/images/disk.img,file.host-key-check.mode=none"

  @spec:ssh.uri @spec:ssh.host_key_check @refusal
  Scenario Outline: a malformed ssh name is refused: <what>
    When the filename '<name>' is resolved
    Then the filename is refused with "<says>"

    Examples: refused by qemu-img too
      | what                               | name                                                   | says                                   |
      | no host                            | ssh:///images/disk.img                                 | missing hostname in URI                |
      | no path                            | ssh://127.0.0.1:1                                      | missing remote path in URI             |
      | a port above 65535                 | ssh://127.0.0.1:65536/disk.img                         | Parameter 'server' is missing          |
      | an unknown host_key_check          | ssh://127.0.0.1:1/disk.img?host_key_check=bogus        | unknown host_key_check setting (bogus) |
      | a port without a host              | json:{"driver":"raw","file":{"driver":"ssh","port":"22","path":"/x"}} | port may not be used without host |
      | an unknown host-key-check mode     | json:{"driver":"raw","file":{"driver":"ssh","server":{"host":"127.0.0.1","port":"1"},"path":"/x","host-key-check":{"mode":"bogus"}}} | Parameter 'mode' does not accept value 'bogus' |

    Examples: fingerprints QEMU compares only once connected, refused by the reference before connecting
      | what                               | name                                                   | says                                   |
      | a fingerprint that is not hex      | ssh://127.0.0.1:1/disk.img?host_key_check=md5:zz       | is not a md5 fingerprint               |
      | an MD5 fingerprint too short       | ssh://127.0.0.1:1/disk.img?host_key_check=md5:78:45:8e | is not a md5 fingerprint               |
      | a bad hash in the options          | json:{"driver":"raw","file":{"driver":"ssh","server":{"host":"127.0.0.1","port":"1"},"path":"/x","host-key-check":{"mode":"hash","type":"md5","hash":"zz"}}} | is not a md5 fingerprint |
      | host_key_check without a value     | ssh://127.0.0.1:1/disk.img?host_key_check              | host_key_check has no value            |
