!> Test driver: obr_init (or obr_init_from_oasis) with a status argument returns a malformed
!! OBRIDGE_* variable's error, or a bad component name, through kinfo (and obr_last_error)
!! instead of aborting.
!! Usage: init_kinfo [NAME [oasis]]   (default NAME: ocean)
program init_kinfo
   use obridge
   implicit none
   integer :: comm             !< the local communicator (unset: init fails before MPI starts)
   integer :: info             !< obr_init's status
   character(len=80) :: name   !< the component name asked for
   character(len=8) :: how     !< 'oasis': through obr_init_from_oasis
   name = 'ocean'
   how = ''
   if (command_argument_count() >= 1) call get_command_argument(1, name)
   if (command_argument_count() >= 2) call get_command_argument(2, how)
   if (how == 'oasis') then
      call obr_init_from_oasis(trim(name), 0, 0, info)
   else
      call obr_init(trim(name), comm, info)
   end if
   write (*, '(a,i0)') 'kinfo ', info
   write (*, '(a)') 'error: '//obr_last_error()
end program init_kinfo
