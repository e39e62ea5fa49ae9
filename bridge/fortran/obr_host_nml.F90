!> @file obr_host_nml.F90
!> @brief The host layer's one reader of &namobridge: the coupling switches every host model shares.
!>
!> A host sets its defaults (obr_nml_defaults), reads the group from its namelist files in order, each over
!> the values of the previous ones (obr_nml_read), then checks them (obr_nml_check). A read error comes back
!> as a message naming the file and the switch; each invalid switch goes to the host's report routine as
!> 'invalid <switch>: <why>'. The host raises them (before MPI is up: obr_host_init).
!> No MPI and no bridge call here: a host built without the bridge library can compile this file alone.
module obr_host_nml
   use, intrinsic :: iso_fortran_env, only: real64
   implicit none
   private

   public :: obr_nml_defaults, obr_nml_read, obr_nml_check, obr_nml_write, obr_nml_is_mask, obr_nml_nstate
   public :: obr_lower, obr_nml_has_group
   public :: obr_field_code_iface, obr_nml_report_iface

   integer, parameter, public :: jp_obr_maxfld = 16     !< most entries of cn_obr_send any host allows
   integer, parameter, public :: jp_obr_namlen = 64     !< longest component name (obridge's OBR_NAME_LEN)
   integer, parameter :: dp = real64             ! as obr_core (NEMO compiles with -fdefault-real-8)
   character(len=*), parameter :: cp_unset = '?unset?'  ! marks list entries a file does not set

   !                                        !!* &namobridge (switch table: deploy/README.md) *
   logical, public :: ln_obridge = .false.               !< master switch
   character(len=256), public :: cn_obr_name = 'model'   !< bridge component name of this run (member k: '<model>_<k>')
   integer, public :: nn_obr_freq = 1                    !< send the state every nn_obr_freq steps
   character(len=16), public :: cn_obr_send(jp_obr_maxfld) = ''   !< fields to send; 'mask' goes once
   logical, public :: ln_obr_emulator = .false.          !< receive '<name>_emu' and apply it
   character(len=16), public :: cn_obr_emu_mode = 'replace'       !< 'replace' or 'increment'
   integer, public :: nn_obr_emu_freq = 1                !< ask for an emulated state every nn_obr_emu_freq steps
   logical, public :: ln_obr_spinup = .false.            !< at start, replace the initial state by '<name>_init'
   logical, public :: ln_obr_required = .true.           !< stop if the worker is absent or dies
   !> seconds any blocking wait may last; its default is the bridge's (obr_core's core_timeout, [run] timeout's:
   !! bridge/transport/env.py), one value for every host (tests/deploy/test_deploy_coupling_keys.py compares them)
   real(dp), parameter :: rp_timeout_default = 300._dp
   real(dp), public :: rn_obr_timeout = rp_timeout_default

   integer :: nmaxfld = jp_obr_maxfld                    ! entries of cn_obr_send this host allows
   character(len=32) :: cdefault = 'model'               ! the host's default cn_obr_name

   namelist /namobridge/ ln_obridge, cn_obr_name, nn_obr_freq, cn_obr_send, ln_obr_emulator, cn_obr_emu_mode, &
      &                  nn_obr_emu_freq, ln_obr_spinup, ln_obr_required, rn_obr_timeout

   abstract interface
      !> A host's code of a state field name of cn_obr_send (> 0), 0 when it is not one ('mask' is not).
      integer function obr_field_code_iface(cd_name)
         character(len=*), intent(in) :: cd_name   !< an entry of cn_obr_send
      end function obr_field_code_iface
      !> A host's handler of one invalid switch; cd_msg reads 'invalid <switch>: <why>'.
      subroutine obr_nml_report_iface(cd_msg)
         character(len=*), intent(in) :: cd_msg    !< the problem, naming the switch
      end subroutine obr_nml_report_iface
   end interface

contains

   !> Set every switch to its default (the host's name) before the first read.
   subroutine obr_nml_defaults(cd_name, kmaxfld)
      character(len=*), intent(in) :: cd_name   !< default cn_obr_name (the model: 'gyre', 'nemo', 'croco')
      integer, intent(in) :: kmaxfld            !< most entries of cn_obr_send (<= jp_obr_maxfld)
      ln_obridge = .false. ; nn_obr_freq = 1 ; cn_obr_send = '' ; ln_obr_emulator = .false.
      cn_obr_emu_mode = 'replace' ; nn_obr_emu_freq = 1 ; ln_obr_spinup = .false. ; ln_obr_required = .true.
      cn_obr_name = cd_name
      cdefault = cd_name
      rn_obr_timeout = rp_timeout_default
      nmaxfld = min(kmaxfld, jp_obr_maxfld)
   end subroutine obr_nml_defaults

   !> Read &namobridge from one file over the current values; a file without the group keeps them.
   !> With ld_newlist, a cn_obr_send = 'a','b' in this file replaces the whole list (entries it does not give
   !> are empty), while entries set by index only, e.g. cn_obr_send(3) = 'v', change only those.
   subroutine obr_nml_read(cd_file, cd_err, ld_newlist, ld_optional, ld_required)
      character(len=*), intent(in)    :: cd_file     !< namelist file name in the run folder
      character(len=*), intent(inout) :: cd_err      !< '' or the first error (file, group, switch); kept if set
      logical, intent(in), optional   :: ld_newlist  !< a full cn_obr_send list replaces the previous one
      logical, intent(in), optional   :: ld_optional !< a missing file is no error (it keeps the values)
      logical, intent(in), optional   :: ld_required !< the file must hold the group
      integer :: inum, ios, ik
      character(len=512) :: clmsg
      character(len=len(cn_obr_send)) :: clsave(jp_obr_maxfld)
      logical :: llnew
      if (cd_err /= '') return
      llnew = .false. ; if (present(ld_newlist)) llnew = ld_newlist
      open(newunit=inum, file=cd_file, status='old', action='read', iostat=ios)
      if (ios /= 0) then
         if (present(ld_optional)) then
            if (ld_optional) return
         end if
         cd_err = 'cannot open '//cd_file ; return
      end if
      clsave = cn_obr_send
      if (llnew) cn_obr_send = cp_unset
      clmsg = ''
      read(inum, nml=namobridge, iostat=ios, iomsg=clmsg)
      close(inum)
      if (llnew) then
         if (cn_obr_send(1) /= cp_unset) then
            where (cn_obr_send == cp_unset) cn_obr_send = ''
         else
            where (cn_obr_send == cp_unset) cn_obr_send = clsave
         end if
      end if
      if (present(ld_required)) then
         if (ld_required .and. .not. obr_nml_has_group(cd_file, 'namobridge')) then
            cd_err = cd_file//': no &namobridge block' ; return
         end if
      end if
      if (ios < 0 .and. obr_nml_has_group(cd_file, 'namobridge')) then
         ! gfortran reaches the end of the file when a value does not parse: the group is there but unreadable
         cd_err = cd_file//': &namobridge cannot be read: a value does not match its variable''s type, '// &
            &     'or the closing / is missing ('//trim(clmsg)//')'
      else if (ios > 0) then
         ik = index(clmsg, 'object name ')
         if (ik > 0) then
            cd_err = cd_file//': &namobridge cannot be read: unknown switch '''//trim(clmsg(ik+12:))//''' ('// &
               &     trim(clmsg)//')'
         else
            cd_err = cd_file//': &namobridge cannot be read: bad entry ('//trim(clmsg)//')'
         end if
      end if
   end subroutine obr_nml_read

   !> .true. when the namelist file holds the group &cd_group (any case); the hosts' readers use it too.
   logical function obr_nml_has_group(cd_file, cd_group)
      character(len=*), intent(in) :: cd_file   !< namelist file name
      character(len=*), intent(in) :: cd_group  !< group name without '&'
      integer :: inum, ios, ie
      character(len=1024) :: cl
      obr_nml_has_group = .false.
      open(newunit=inum, file=cd_file, status='old', action='read', iostat=ios)
      if (ios /= 0) return
      do
         read(inum, '(a)', iostat=ios) cl
         if (ios /= 0) exit
         cl = adjustl(cl)
         if (cl(1:1) /= '&') cycle
         ie = scan(cl(2:), ' /!,') ; if (ie == 0) ie = len_trim(cl)
         if (obr_lower(cl(2:ie)) == obr_lower(cd_group)) obr_nml_has_group = .true.
      end do
      close(inum)
   end function obr_nml_has_group

   !> Check the values read; every invalid switch is reported once through report, naming the switch:
   !> as '<switch> must be ...' (the gyre's and CROCO's words), or with ld_invalid as 'invalid <switch>: <why>' (NEMO's).
   subroutine obr_nml_check(field_code, cd_fields, report, ld_invalid)
      procedure(obr_field_code_iface) :: field_code   !< the host's code of a state field name (0: unknown)
      character(len=*), intent(in) :: cd_fields       !< the host's names, for messages, e.g. 'a gyre field (ssh, u)'
      procedure(obr_nml_report_iface) :: report       !< the host's handler of one problem (stop, count or keep)
      logical, intent(in), optional :: ld_invalid     !< word the messages 'invalid <switch>: <why>'
      integer :: jf, jg, ilen
      logical :: llinv
      llinv = .false. ; if (present(ld_invalid)) llinv = ld_invalid
      if (nn_obr_freq < 1) call say('nn_obr_freq', 'must be >= 1, got '//itoa(nn_obr_freq), 'nn_obr_freq must be >= 1')
      if (nn_obr_emu_freq < 1) call say('nn_obr_emu_freq', 'must be >= 1, got '//itoa(nn_obr_emu_freq), &
         &                              'nn_obr_emu_freq must be >= 1')
      if (.not. rn_obr_timeout > 0._dp) call say('rn_obr_timeout', 'must be > 0 seconds', &
         &                                       'rn_obr_timeout must be > 0 (seconds)')
      if (cn_obr_emu_mode /= 'replace' .and. cn_obr_emu_mode /= 'increment') call say('cn_obr_emu_mode', &
         & ''''//trim(cn_obr_emu_mode)//''' is not ''replace'' or ''increment''', &
         & 'cn_obr_emu_mode = '''//trim(cn_obr_emu_mode)//''' is neither ''replace'' nor ''increment''')
      ! cn_obr_name: 1..jp_obr_namlen characters, no blanks (it is the bridge's component name)
      ilen = len_trim(cn_obr_name)
      if (ilen == 0) then
         call say('cn_obr_name', 'it is empty', 'cn_obr_name is empty (the bridge component name of this run, e.g. '''// &
            &     trim(cdefault)//''' or '''//trim(cdefault)//'_1'')')
      else if (ilen > jp_obr_namlen) then
         call say('cn_obr_name', 'it has '//itoa(ilen)//' characters, more than '//itoa(jp_obr_namlen), &
            &     'cn_obr_name has '//itoa(ilen)//' characters, more than the '//itoa(jp_obr_namlen)// &
            &     ' of a bridge component name')
      else if (scan(cn_obr_name(1:ilen), ' '//achar(9)) > 0) then
         call say('cn_obr_name', ''''//cn_obr_name(1:ilen)//''' must be 1..'//itoa(jp_obr_namlen)// &
            &     ' characters without blanks', 'cn_obr_name = '''//cn_obr_name(1:ilen)// &
            &     ''' contains a blank (a bridge component name has none)')
      end if
      ! cn_obr_send: known names (a state field, its alias, or 'mask'), each at most once
      do jf = 1, jp_obr_maxfld
         if (len_trim(cn_obr_send(jf)) == 0) cycle
         if (jf > nmaxfld) then
            call say('cn_obr_send', 'more than '//itoa(nmaxfld)//' entries', 'cn_obr_send('//itoa(jf)//') = '''// &
               &     trim(cn_obr_send(jf))//''': cn_obr_send has at most '//itoa(nmaxfld)//' entries')
            cycle
         end if
         if (field_code(cn_obr_send(jf)) == 0 .and. .not. obr_nml_is_mask(cn_obr_send(jf))) &
            & call say('cn_obr_send', ''''//trim(cn_obr_send(jf))//''' is not '//cd_fields, &
            &          'cn_obr_send('//itoa(jf)//') = '''//trim(cn_obr_send(jf))//''' is not '//cd_fields)
         do jg = 1, jf - 1
            if ((field_code(cn_obr_send(jg)) > 0 .and. field_code(cn_obr_send(jg)) == field_code(cn_obr_send(jf))) .or. &
               & (obr_nml_is_mask(cn_obr_send(jg)) .and. obr_nml_is_mask(cn_obr_send(jf)))) &
               & call say('cn_obr_send', ''''//trim(cn_obr_send(jf))//''' is listed twice', &
               &          'cn_obr_send lists '''//trim(cn_obr_send(jf))//''' twice')
         end do
      end do
      if (ln_obridge .and. (ln_obr_emulator .or. ln_obr_spinup) .and. obr_nml_nstate(field_code) == 0) &
         & call say('cn_obr_send', 'lists no state field to receive (ln_obr_emulator or ln_obr_spinup is on)', &
         &          'ln_obr_emulator and ln_obr_spinup act on the state fields of cn_obr_send, and it lists none')
   contains
      !> Report one problem in the host's words.
      subroutine say(cd_switch, cd_why, cd_sentence)
         character(len=*), intent(in) :: cd_switch     !< the switch
         character(len=*), intent(in) :: cd_why        !< what is wrong ('invalid <switch>: <why>')
         character(len=*), intent(in) :: cd_sentence   !< the same as a sentence naming the switch
         if (llinv) then
            call report('invalid '//cd_switch//': '//cd_why)
         else
            call report(cd_sentence)
         end if
      end subroutine say
   end subroutine obr_nml_check

   !> An integer as text.
   function itoa(k) result(cl)
      integer, intent(in) :: k                  !< the integer
      character(len=:), allocatable :: cl
      character(len=16) :: clw
      write(clw, '(i0)') k
      cl = trim(clw)
   end function itoa

   !> Number of state fields (known to the host, 'mask' excluded) in cn_obr_send.
   integer function obr_nml_nstate(field_code)
      procedure(obr_field_code_iface) :: field_code   !< the host's code of a state field name (0: unknown)
      integer :: jf
      obr_nml_nstate = 0
      do jf = 1, nmaxfld
         if (len_trim(cn_obr_send(jf)) > 0) then
            if (field_code(cn_obr_send(jf)) > 0) obr_nml_nstate = obr_nml_nstate + 1
         end if
      end do
   end function obr_nml_nstate

   !> Write the group as read to a unit (ocean.output style).
   subroutine obr_nml_write(kunit)
      integer, intent(in) :: kunit              !< Fortran unit to write to
      write(kunit, nml=namobridge)
   end subroutine obr_nml_write

   !> .true. for the entry 'mask' (any case) of cn_obr_send: the host's mask, sent once at step nit000-1.
   elemental logical function obr_nml_is_mask(cd_name)
      character(len=*), intent(in) :: cd_name   !< an entry of cn_obr_send
      obr_nml_is_mask = trim(adjustl(obr_lower(cd_name))) == 'mask'
   end function obr_nml_is_mask

   !> Lower-case copy of a string (the hosts' one case-folding of switch, block and field names).
   elemental function obr_lower(cd) result(cl)
      character(len=*), intent(in) :: cd        !< input string
      character(len=len(cd)) :: cl
      integer :: jc, ic
      cl = cd
      do jc = 1, len(cd)
         ic = iachar(cd(jc:jc))
         if (ic >= iachar('A') .and. ic <= iachar('Z')) cl(jc:jc) = achar(ic + 32)
      end do
   end function obr_lower

end module obr_host_nml
