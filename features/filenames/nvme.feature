@filenames @format:nvme @protocol:nvme @spec:nvme
Feature: NVMe filenames
  nvme://HOST:BUS:SLOT.FUNC/NAMESPACE, or file.driver=nvme,file.device=...,file.namespace=...,
  names a namespace (numbered from 1) of an NVMe controller bound to vfio-pci. Without VFIO on
  the machine the open fails as QEMU's does; opening a real namespace needs a machine with one.

  @spec:nvme.uri @spec:nvme.namespace
  Scenario Outline: <name> names device <device>, <namespace>
    When the filename '<name>' is resolved
    Then the options are "driver=nvme,device=<device>,<namespace>"

    Examples:
      | name                        | device        | namespace     |
      | nvme://0000:06:0d.0/1       | 0000:06:0d.0  | namespace=1   |
      | nvme://0000:06:0d.0/2       | 0000:06:0d.0  | namespace=2   |
      | nvme://0000:06:0d.0/        | 0000:06:0d.0  | namespace=1   |
      | nvme://0000:06:0d.0         | 0000:06:0d.0  | !namespace    |

  @spec:nvme.options
  Scenario: the manual's alternative syntax uses options
    When the option list 'driver=raw,file.driver=nvme,file.device=0000:06:0d.0,file.namespace=1' is resolved
    Then the options are "file.driver=nvme,file.device=0000:06:0d.0,file.namespace=1"

  @refusal
  Scenario Outline: a malformed NVMe name is refused: <what>
    When the filename '<name>' is resolved
    Then the filename is refused with "<says>"

    Examples:
      | what                      | name                       | says                                                  |
      | a namespace with letters  | nvme://0000:06:0d.0/x      | Invalid namespace 'x', positive number expected       |
      | a path after the namespace | nvme://0000:06:0d.0/1/2   | Invalid namespace '1/2', positive number expected     |
      | no device                 | nvme://                    | 'device' option is required                           |
      | no // after nvme:         | nvme:0000:06:0d.0/1        | 'device' option is required                           |

  @refusal
  Scenario: without VFIO, opening an NVMe namespace fails as QEMU's open does
    When the image is opened by the name 'nvme://0000:06:0d.0/1'
    Then opening is refused with "Failed to open /dev/vfio/vfio"

  @requires:vfio
  Scenario: a namespace of a controller bound to vfio-pci opens
    When the image is opened by the name 'nvme://0000:06:0d.0/1'
    Then the opened image has format raw
