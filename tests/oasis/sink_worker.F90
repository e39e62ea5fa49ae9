!> STAND-IN for the Python worker in a train-only OASIS run (pyoasis 5 is not
!! available here): one rank owns the whole grid and gets every 2-D field the
!! ocean sends, by the OASIS names given (from bridge.transport.naming.oasis_name), calling
!! oasis_get at every state kt = nit000-1 .. nitend (t = 0, dt, .., NT*dt; OASIS
!! acts at the namcouple's periods), and prints per field the receptions and the
!! range of the last one, which it also writes to sink_<field>.bin (nx*ny
!! float64, i fastest). Usage: sink_worker NX NY NT DT NAME...
program sink_worker
   use mod_oasis
   use mpi
   implicit none
   integer :: nx, ny, nt, dt, nf, comp_id, comm, part_id, ierr, k, f, info, unit
   integer, allocatable :: var(:), nrecv(:)
   character(len=64) :: arg
   character(len=64), allocatable :: fname(:)
   real(8), allocatable :: a(:, :, :)
   call get_command_argument(1, arg); read (arg, *) nx
   call get_command_argument(2, arg); read (arg, *) ny
   call get_command_argument(3, arg); read (arg, *) nt
   call get_command_argument(4, arg); read (arg, *) dt
   nf = command_argument_count() - 4
   allocate (var(nf), nrecv(nf), fname(nf), a(nx, ny, nf))
   call oasis_init_comp(comp_id, 'worker', ierr)
   call oasis_get_localcomm(comm, ierr)
   call oasis_def_partition(part_id, [2, 0, nx, ny, nx], ierr, nx*ny)
   do f = 1, nf
      call get_command_argument(4 + f, fname(f))
      call oasis_def_var(var(f), trim(fname(f)), part_id, [1, 1], OASIS_In, [1, nx*ny], OASIS_Real, ierr)
   end do
   call oasis_enddef(ierr)
   nrecv = 0
   do k = 0, nt
      do f = 1, nf
         call oasis_get(var(f), k*dt, a(:, :, f), info)
         if (info == OASIS_Recvd) nrecv(f) = nrecv(f) + 1
      end do
   end do
   do f = 1, nf
      print '(a,i0,a,es12.4,a,es12.4,a,l1)', 'sink worker: '//trim(fname(f))//' receptions ', nrecv(f), &
         ' min ', minval(a(:, :, f)), ' max ', maxval(a(:, :, f)), ' finite ', all(abs(a(:, :, f)) < huge(1d0))
      open (newunit=unit, file='sink_'//trim(fname(f))//'.bin', access='stream', form='unformatted', &
            status='replace')
      write (unit) a(:, :, f)
      close (unit)
   end do
   call oasis_terminate(ierr)
end program sink_worker
